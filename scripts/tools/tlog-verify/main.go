// tlog-verify checks a transparency log served as c2sp.org/tlog-tiles with a verifier the gateway did not write:
// Go's golang.org/x/mod/sumdb/tlog (tiles, RFC 6962 inclusion and consistency proofs) and sumdb/note (signed
// notes). The checkpoint's signature is ECDSA P-256 over SHA-256 as Sigstore's logs sign (x/mod's note knows only
// Ed25519 keys, so the key is a note.Verifier of this file, using crypto/ecdsa).
//
// Usage: tlog-verify -url URL -key KEY.pem [-cacert CA.pem] [-since OLD_CHECKPOINT]
//
// It fetches URL/checkpoint, checks its signature and origin, then proves every leaf of the entry bundles
// (URL/tile/entries/...) included in the checkpoint's tree through the hash tiles (URL/tile/...), and prints each
// leaf, one per line, as "INDEX BODY". With -since it also proves the older checkpoint's tree a prefix of the
// newer. Any failure exits 1 with the reason on stderr.
package main

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const height = 8

func main() {
	url := flag.String("url", "", "the log's base URL (its checkpoint is URL/checkpoint)")
	keyFile := flag.String("key", "", "the log's public key (PEM, ECDSA P-256)")
	caFile := flag.String("cacert", "", "the CA of the log's TLS certificate")
	since := flag.String("since", "", "an older checkpoint of the same log, to prove the newer consistent with")
	flag.Parse()
	if err := run(*url, *keyFile, *caFile, *since); err != nil {
		fmt.Fprintln(os.Stderr, "tlog-verify:", err)
		os.Exit(1)
	}
}

func run(url, keyFile, caFile, since string) error {
	if url == "" || keyFile == "" {
		return errors.New("-url and -key are required")
	}
	client, err := httpClient(caFile)
	if err != nil {
		return err
	}
	url = strings.TrimSuffix(url, "/")
	parsed, err := neturl.Parse(url)
	if err != nil {
		return err
	}
	// The log's origin is its URL's host name, as Sigstore's clients name a Rekor v2 log's key.
	origin := parsed.Hostname()
	verifier, err := loadVerifier(keyFile, origin)
	if err != nil {
		return err
	}
	raw, err := get(client, url+"/checkpoint")
	if err != nil {
		return err
	}
	tree, err := openCheckpoint(raw, verifier)
	if err != nil {
		return fmt.Errorf("the checkpoint: %w", err)
	}
	reader := tlog.TileHashReader(tree, &tileReader{client: client, url: url})

	// Every leaf of the entry bundles, proven included in the checkpoint's tree.
	for start := int64(0); start < tree.N; start += 1 << height {
		width := tree.N - start
		if width > 1<<height {
			width = 1 << height
		}
		tile := tlog.Tile{H: height, L: -1, N: start >> height, W: int(width)}
		bundle, err := get(client, url+"/"+c2spPath(tile))
		if err != nil {
			return err
		}
		leaves, err := unbundle(bundle)
		if err != nil {
			return fmt.Errorf("entry bundle %d: %w", tile.N, err)
		}
		if int64(len(leaves)) != width {
			return fmt.Errorf("entry bundle %d holds %d leaves, the tree %d", tile.N, len(leaves), width)
		}
		for i, leaf := range leaves {
			index := start + int64(i)
			proof, err := tlog.ProveRecord(tree.N, index, reader)
			if err != nil {
				return fmt.Errorf("leaf %d: no inclusion proof: %w", index, err)
			}
			if err := tlog.CheckRecord(proof, tree.N, tree.Hash, index, tlog.RecordHash(leaf)); err != nil {
				return fmt.Errorf("leaf %d is not in the checkpoint's tree: %w", index, err)
			}
			fmt.Printf("%d %s\n", index, leaf)
		}
	}

	if since != "" {
		old, err := os.ReadFile(since)
		if err != nil {
			return err
		}
		oldTree, err := openCheckpoint(old, verifier)
		if err != nil {
			return fmt.Errorf("the older checkpoint: %w", err)
		}
		if oldTree.N > tree.N {
			return fmt.Errorf("the older checkpoint has %d leaves, the newer %d", oldTree.N, tree.N)
		}
		if oldTree.N > 0 {
			proof, err := tlog.ProveTree(tree.N, oldTree.N, reader)
			if err != nil {
				return fmt.Errorf("no consistency proof: %w", err)
			}
			if err := tlog.CheckTree(proof, tree.N, tree.Hash, oldTree.N, oldTree.Hash); err != nil {
				return fmt.Errorf("the newer checkpoint is not consistent with the older: %w", err)
			}
		}
	}
	fmt.Fprintf(os.Stderr, "tlog-verify: %s: %d leaves, root %s, every leaf proven included\n", origin, tree.N, tree.Hash)
	return nil
}

// ecdsaVerifier is a note.Verifier for an ECDSA P-256 log key as Sigstore names it: the key ID is the first four
// bytes of the SHA-256 of the key's SubjectPublicKeyInfo, the signature ASN.1 DER over the SHA-256 of the text.
type ecdsaVerifier struct {
	name string
	hash uint32
	key  *ecdsa.PublicKey
}

func (v *ecdsaVerifier) Name() string    { return v.name }
func (v *ecdsaVerifier) KeyHash() uint32 { return v.hash }
func (v *ecdsaVerifier) Verify(msg, sig []byte) bool {
	digest := sha256.Sum256(msg)
	return ecdsa.VerifyASN1(v.key, digest[:], sig)
}

func loadVerifier(keyFile, origin string) (*ecdsaVerifier, error) {
	data, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s holds no PEM block", keyFile)
	}
	parsed, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := parsed.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s is not an ECDSA key", keyFile)
	}
	id := sha256.Sum256(block.Bytes)
	return &ecdsaVerifier{name: origin, hash: binary.BigEndian.Uint32(id[:4]), key: key}, nil
}

// openCheckpoint checks the note's signature by the log's key and parses its text (c2sp.org/tlog-checkpoint).
func openCheckpoint(raw []byte, verifier *ecdsaVerifier) (tlog.Tree, error) {
	n, err := note.Open(raw, note.VerifierList(verifier))
	if err != nil {
		return tlog.Tree{}, err
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 {
		return tlog.Tree{}, errors.New("too few lines")
	}
	if lines[0] != verifier.name {
		return tlog.Tree{}, fmt.Errorf("origin %q, expected %q", lines[0], verifier.name)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 {
		return tlog.Tree{}, fmt.Errorf("bad tree size %q", lines[1])
	}
	hash, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(hash) != tlog.HashSize {
		return tlog.Tree{}, fmt.Errorf("bad root hash %q", lines[2])
	}
	var tree tlog.Tree
	tree.N = size
	copy(tree.Hash[:], hash)
	return tree, nil
}

// c2spPath is the tile's c2sp.org/tlog-tiles path: Go's tile path without the height, "data" spelled "entries".
func c2spPath(t tlog.Tile) string {
	p := strings.TrimPrefix(t.Path(), "tile/8/")
	p = strings.Replace(p, "data/", "entries/", 1)
	return "tile/" + p
}

type tileReader struct {
	client *http.Client
	url    string
}

func (r *tileReader) Height() int { return height }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		data, err := get(r.client, r.url+"/"+c2spPath(t))
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (r *tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// unbundle splits an entry bundle: each leaf prefixed by its length, a big-endian uint16.
func unbundle(data []byte) ([][]byte, error) {
	var leaves [][]byte
	for len(data) > 0 {
		if len(data) < 2 {
			return nil, errors.New("truncated length")
		}
		n := int(binary.BigEndian.Uint16(data))
		if len(data) < 2+n {
			return nil, errors.New("truncated leaf")
		}
		leaves = append(leaves, data[2:2+n])
		data = data[2+n:]
	}
	return leaves, nil
}

func httpClient(caFile string) (*http.Client, error) {
	if caFile == "" {
		return http.DefaultClient, nil
	}
	pemData, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, fmt.Errorf("%s holds no certificate", caFile)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}, nil
}

func get(client *http.Client, url string) ([]byte, error) {
	response, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer response.Body.Close()
	body, err := io.ReadAll(response.Body)
	if err != nil {
		return nil, err
	}
	if response.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, response.Status, body)
	}
	return body, nil
}
