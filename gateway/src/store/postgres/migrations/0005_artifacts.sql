-- The artifacts of file-based signing requests, shared by every replica: what each request was
-- (`artifact_requests.request`, its JSON) and its files (the upload, and the signed artifact once it is completed),
-- each kept as pieces of 1 MiB so that neither end ever holds a file whole. A file's row in `artifact_files` is
-- written in the transaction that writes its pieces: a file with a row is whole. `submitted` is what the
-- retention sweep compares; a swept request keeps its record (`deleted`), not its files.
CREATE TABLE artifact_requests (
    request_id TEXT PRIMARY KEY,
    submitted BIGINT NOT NULL,
    deleted BOOLEAN NOT NULL DEFAULT false,
    request TEXT NOT NULL
);
CREATE INDEX artifact_requests_kept ON artifact_requests (submitted) WHERE NOT deleted;

CREATE TABLE artifact_files (
    request_id TEXT NOT NULL,
    file TEXT NOT NULL,
    length BIGINT NOT NULL,
    chunks INTEGER NOT NULL,
    stored BIGINT NOT NULL,
    PRIMARY KEY (request_id, file)
);

CREATE TABLE artifact_chunks (
    request_id TEXT NOT NULL,
    file TEXT NOT NULL,
    piece INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (request_id, file, piece)
);
-- Artifacts are tarballs of compressed layers: PostgreSQL would try to compress every piece in vain.
ALTER TABLE artifact_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
