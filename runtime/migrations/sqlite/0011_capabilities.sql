-- Plugin capabilities (issue 14): an alias's secrets and tenants' key-value
-- state.
--
-- Secrets are per tenant and alias name, not versioned with the alias (a
-- rollback does not bring back an old API key); sealed with the server's
-- secrets key (XChaCha20-Poly1305, bound to tenant, alias and key), never in
-- clear. Deleting the alias or its tenant deletes them.
CREATE TABLE alias_secrets (
    tenant      TEXT    NOT NULL,
    alias       TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    sealed      TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant, alias, key)
) WITHOUT ROWID;

-- Key-value state: per tenant and named store (aliases naming the same store
-- share it). Keys are listed in byte order (BLOB comparison of the UTF-8 text).
CREATE TABLE kv (
    tenant      TEXT    NOT NULL,
    store       TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    value       BLOB    NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant, store, key)
) WITHOUT ROWID;

-- What each store holds (bytes are keys plus values), kept in the transaction
-- of every write so the limits per store and the tenant's quota are checked
-- without summing the store.
CREATE TABLE kv_stores (
    tenant      TEXT    NOT NULL,
    store       TEXT    NOT NULL,
    bytes       INTEGER NOT NULL,
    keys        INTEGER NOT NULL,
    PRIMARY KEY (tenant, store)
) WITHOUT ROWID;

-- Usage: key-value writes (set, delete, increment) per tenant-day, and the
-- gauge of key-value bytes stored, set on days it changed like the module
-- gauge (NULL: unchanged, the last earlier value holds).
ALTER TABLE usage ADD COLUMN kv_writes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage ADD COLUMN kv_bytes_max INTEGER;
ALTER TABLE usage ADD COLUMN kv_bytes_end INTEGER;

-- kv_stores follows every change of kv (the increment is one statement; its
-- value may grow a digit).
CREATE TRIGGER kv_inserted AFTER INSERT ON kv BEGIN
    INSERT INTO kv_stores (tenant, store, bytes, keys)
    VALUES (NEW.tenant, NEW.store, length(CAST(NEW.key AS BLOB)) + length(NEW.value), 1)
    ON CONFLICT (tenant, store) DO UPDATE SET bytes = bytes + excluded.bytes, keys = keys + 1;
END;
CREATE TRIGGER kv_updated AFTER UPDATE OF value ON kv BEGIN
    UPDATE kv_stores SET bytes = bytes + length(NEW.value) - length(OLD.value)
    WHERE tenant = NEW.tenant AND store = NEW.store;
END;
CREATE TRIGGER kv_deleted AFTER DELETE ON kv BEGIN
    UPDATE kv_stores SET bytes = bytes - length(CAST(OLD.key AS BLOB)) - length(OLD.value), keys = keys - 1
    WHERE tenant = OLD.tenant AND store = OLD.store;
END;
