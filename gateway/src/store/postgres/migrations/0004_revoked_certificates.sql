-- Certificates the gateway's CAs revoked (`signpath-gateway revoke`): a policy whose certificate chain holds one
-- signs nothing, on every replica. `entry` is the revocation as `[pki] revocations` records it (JSON).
CREATE TABLE revoked_certificates (
    issuer TEXT NOT NULL,
    serial TEXT NOT NULL,
    entry TEXT NOT NULL,
    PRIMARY KEY (issuer, serial)
);
