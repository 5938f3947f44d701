-- A tenant's batches newest first (`GET /v1/batches`, ids are UUIDv7).
CREATE INDEX batches_tenant ON batches (tenant, id);
