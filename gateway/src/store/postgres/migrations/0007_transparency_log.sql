-- The transparency log: its leaves (a signature's leaf is inserted in its audit record's transaction), the stored
-- hashes of its Merkle tree, its checkpoints, and its size (one row, which a growth compares and sets, so of two
-- replicas sequencing at once one grows the tree and the other finds it grown).
CREATE TABLE tlog_leaves (
    seq BIGSERIAL PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    body BYTEA NOT NULL,
    leaf_index BIGINT UNIQUE
);
CREATE INDEX tlog_leaves_pending ON tlog_leaves (seq) WHERE leaf_index IS NULL;
CREATE TABLE tlog_hashes (
    hash_index BIGINT PRIMARY KEY,
    hash BYTEA NOT NULL
);
CREATE TABLE tlog_checkpoints (
    tree_size BIGINT PRIMARY KEY,
    note TEXT NOT NULL
);
CREATE TABLE tlog_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    tree_size BIGINT NOT NULL
);
INSERT INTO tlog_head (id, tree_size) VALUES (1, 0);
