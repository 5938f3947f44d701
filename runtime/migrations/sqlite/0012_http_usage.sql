-- Outbound HTTP of plugins, counted per tenant per day with each run's fuel
-- (once per claim, see runtime/src/store/usage.rs): requests sent (refused
-- ones included) and the bytes of request and response bodies.
ALTER TABLE usage ADD COLUMN http_requests       INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage ADD COLUMN http_bytes_sent     INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage ADD COLUMN http_bytes_received INTEGER NOT NULL DEFAULT 0;
