//! The log as c2sp.org/tlog-tiles serves it: hash tiles `tile/<L>/<N>[.p/<W>]` (height 8, 256 hashes of level
//! 8·L each) and entry bundles `tile/entries/<N>[.p/<W>]` (the leaves themselves, each prefixed by its length as a
//! big-endian uint16). `tlog_tiles` knows Go's paths, which name the height (`tile/8/0/…`, `tile/8/data/…`); the
//! C2SP paths leave it out, so they are mapped here in one place.

use tlog_tiles::Tile;

use super::tree::StoredHashes;
use super::TlogError;
use crate::store::log::LogStore;

/// The height of every tile (fixed by tlog-tiles).
pub const HEIGHT: u8 = 8;
/// Leaves (or hashes) in a full tile.
pub const WIDTH: u64 = 1 << HEIGHT;

/// What a tile path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TilePath {
    Hashes(Tile),
    Entries(Tile),
}

impl TilePath {
    /// Parses a path below the log's prefix (`tile/0/x001/234.p/17`, `tile/entries/000`); None if it is not one.
    pub fn parse(path: &str) -> Option<Self> {
        let rest = path.strip_prefix("tile/")?;
        // `Tile::from_path` panics on a width of 0 or a level of 64 or more (it asserts what `Tile::new` takes);
        // both are refused here first.
        if let Some((_, width)) = rest.rsplit_once(".p/") {
            if !width.parse::<u32>().is_ok_and(|w| w >= 1) {
                return None;
            }
        }
        let level = rest.split('/').next()?;
        if level != "entries" && !level.parse::<u8>().is_ok_and(|l| l < 64) {
            return None;
        }
        if let Some(entries) = rest.strip_prefix("entries/") {
            let tile = Tile::from_path(&format!("tile/{HEIGHT}/data/{entries}")).ok()?;
            return Some(Self::Entries(tile));
        }
        // The level is a number (Go's paths would take "data" there, which C2SP spells "entries").
        if !rest.split('/').next()?.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let tile = Tile::from_path(&format!("tile/{HEIGHT}/{rest}")).ok()?;
        Some(Self::Hashes(tile))
    }

    /// The C2SP path of this tile.
    #[cfg(test)]
    pub fn path(&self) -> String {
        let (Self::Hashes(tile) | Self::Entries(tile)) = self;
        let go = tile.path();
        let rest = go.strip_prefix(&format!("tile/{HEIGHT}/")).unwrap_or(&go);
        match self {
            Self::Hashes(_) => format!("tile/{rest}"),
            Self::Entries(_) => format!("tile/entries/{}", rest.strip_prefix("data/").unwrap_or(rest)),
        }
    }

    /// Whether the tile is full (never changes again) rather than partial.
    pub fn is_full(&self) -> bool {
        let (Self::Hashes(tile) | Self::Entries(tile)) = self;
        u64::from(tile.width()) == WIDTH
    }

    /// The tile's bytes in a tree of `size` leaves; None if the tree does not (yet) have it.
    pub fn read(&self, store: &dyn LogStore, size: u64) -> Result<Option<Vec<u8>>, TlogError> {
        let (Self::Hashes(tile) | Self::Entries(tile)) = self;
        let level_bits = u32::from(HEIGHT) * u32::from(tile.level());
        let end = (tile.level_index() << HEIGHT) + u64::from(tile.width());
        let Some(end_leaf) = end.checked_shl(level_bits).filter(|e| e >> level_bits == end) else {
            return Ok(None);
        };
        if end_leaf > size {
            return Ok(None);
        }
        match self {
            Self::Hashes(tile) => {
                let hashes = StoredHashes::new(store);
                tile.read_data(&hashes).map(Some).map_err(|e| hashes.error(e))
            }
            Self::Entries(tile) => {
                let from = tile.level_index() << HEIGHT;
                let bodies = store.bodies(from, from + u64::from(tile.width()))?;
                Ok(Some(bundle(&bodies)?))
            }
        }
    }
}

/// An entry bundle: each leaf prefixed by its length (big-endian uint16).
pub fn bundle(bodies: &[Vec<u8>]) -> Result<Vec<u8>, TlogError> {
    let mut out = Vec::new();
    for body in bodies {
        let length =
            u16::try_from(body.len()).map_err(|_| TlogError::Tree("a leaf over 65535 bytes".into()))?;
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(body);
    }
    Ok(out)
}

/// The leaves of an entry bundle.
#[cfg(test)]
pub fn unbundle(mut data: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut bodies = Vec::new();
    while !data.is_empty() {
        let (length, rest) = data.split_at_checked(2)?;
        let length = usize::from(u16::from_be_bytes([length[0], length[1]]));
        let (body, rest) = rest.split_at_checked(length)?;
        bodies.push(body.to_vec());
        data = rest;
    }
    Some(bodies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c2sp_paths_parse_and_print_back() {
        for path in [
            "tile/0/000",
            "tile/0/x001/234",
            "tile/1/000.p/3",
            "tile/entries/000.p/1",
            "tile/entries/x123/456",
        ] {
            let tile = TilePath::parse(path).unwrap_or_else(|| panic!("{path}"));
            assert_eq!(tile.path(), path);
        }
        assert!(matches!(
            TilePath::parse("tile/entries/000"),
            Some(TilePath::Entries(_))
        ));
        assert!(TilePath::parse("tile/0/000").is_some_and(|t| t.is_full()));
        assert!(TilePath::parse("tile/0/000.p/5").is_some_and(|t| !t.is_full()));
    }

    #[test]
    fn bad_paths_are_refused() {
        for path in [
            "tile/data/000",
            "tile/8/0/000",
            "tile/0/abc",
            "tile/0/000.p/0",
            "tile/0/000.p/256",
            "tile/0/1000",
            "tile/0/x000/000/",
            "tiles/0/000",
            "tile/0/../../etc",
            "tile/64/000",
            "tile/255/000",
            "tile/entries/000.p/0",
            "tile/0/000.p/x",
        ] {
            assert_eq!(TilePath::parse(path), None, "{path}");
        }
    }

    #[test]
    fn entry_bundles_round_trip() {
        let bodies = vec![b"one".to_vec(), Vec::new(), vec![7; 300]];
        let data = bundle(&bodies).expect("bundle");
        assert_eq!(&data[..5], b"\0\x03one");
        assert_eq!(unbundle(&data), Some(bodies));
        assert_eq!(unbundle(&data[..data.len() - 1]), None);
    }
}
