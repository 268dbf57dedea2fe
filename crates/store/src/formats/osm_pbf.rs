//! OpenStreetMap PBF extracts, read with `osmpbf`.
//!
//! Nodes become places directly, ways by the centroid of their nodes, relations (multipolygons)
//! by the centroid of their member ways' nodes. Node coordinates are needed for that, so the file
//! is read three times: relations (which member ways matter), ways (which nodes matter), nodes
//! (places and the coordinates of just those nodes). Only the ids and coordinates the mapped
//! elements reference are held in memory.
//!
//! Before decoding, the blob framing is checked (every blob's declared size must fit in the file),
//! so a truncated download is reported as such. `osmpbf` may panic on some corrupt blocks (in
//! debug builds, on integer overflow of delta-coded ids); such panics are caught and reported as
//! [`FormatError::Pbf`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use chrono::{DateTime, Utc};
use osmpbf::{BlobDecode, BlobReader, PrimitiveBlock, RelMemberType};
use sadomap_core::{Kind, LatLng, OsmId, OsmType, Place, Source};

use super::osm_tags::{centroid, osm_id, OsmTags};
use super::{Flow, FormatError, Position};

/// Counts of the places an OSM reader produced, as `amenity/type` (`restaurant/node`,
/// `pub/relation`), the same keys as pyosmium-style summaries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsmStats {
    /// Places by `amenity/type`.
    pub amenity_counts: BTreeMap<String, usize>,
    /// Ways and relations none of whose nodes were in the file (imported without a location).
    pub without_location: usize,
}

impl OsmStats {
    pub(crate) fn count(&mut self, amenity: &str, kind: OsmType, located: bool) {
        let t = match kind {
            OsmType::Node => "node",
            OsmType::Way => "way",
            OsmType::Relation => "relation",
        };
        *self
            .amenity_counts
            .entry(format!("{amenity}/{t}"))
            .or_default() += 1;
        if !located {
            self.without_location += 1;
        }
    }
}

fn pbf_err(file: &str, message: impl Into<String>) -> FormatError {
    FormatError::Pbf {
        file: file.to_owned(),
        message: message.into(),
    }
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The `datasize` field (3) of a BlobHeader message.
fn blob_datasize(header: &[u8]) -> Option<u64> {
    let mut pos = 0;
    let mut size = None;
    while pos < header.len() {
        let key = read_varint(header, &mut pos)?;
        match key & 7 {
            0 => {
                let v = read_varint(header, &mut pos)?;
                if key >> 3 == 3 {
                    size = Some(v);
                }
            }
            2 => {
                let len = usize::try_from(read_varint(header, &mut pos)?).ok()?;
                pos = pos.checked_add(len).filter(|&p| p <= header.len())?;
            }
            _ => return None,
        }
    }
    size
}

/// Walks the blob framing: every 4-byte header length, header and declared blob must fit.
fn check_framing(path: &Path, file: &str) -> Result<(), FormatError> {
    let shown = path.display().to_string();
    let f = File::open(path).map_err(|e| FormatError::io(&shown, e))?;
    let len = f.metadata().map_err(|e| FormatError::io(&shown, e))?.len();
    if len == 0 {
        return Err(FormatError::Empty {
            file: file.to_owned(),
            expected: "an OSM PBF extract (starting with an OSMHeader blob)",
        });
    }
    let mut r = BufReader::new(f);
    let mut at = 0u64;
    let mut blob = 0usize;
    while at < len {
        if len - at < 4 {
            return Err(pbf_err(
                file,
                format!(
                    "truncated: {} stray bytes at byte {at} after blob #{blob}",
                    len - at
                ),
            ));
        }
        let mut n = [0u8; 4];
        r.read_exact(&mut n)
            .map_err(|e| FormatError::io(&shown, e))?;
        let hlen = u64::from(u32::from_be_bytes(n));
        if hlen >= 64 * 1024 {
            return Err(pbf_err(
                file,
                format!("blob #{blob} at byte {at} has a header of {hlen} bytes (at most 64 KiB)"),
            ));
        }
        if at + 4 + hlen > len {
            return Err(pbf_err(file, format!("truncated: blob #{blob} at byte {at} ends past the end of the file ({len} bytes)")));
        }
        let mut header = vec![0u8; hlen as usize];
        r.read_exact(&mut header)
            .map_err(|e| FormatError::io(&shown, e))?;
        if blob == 0 && !header.windows(9).any(|w| w == b"OSMHeader") {
            return Err(pbf_err(
                file,
                "the file does not start with an OSMHeader blob",
            ));
        }
        let size = blob_datasize(&header).ok_or_else(|| {
            pbf_err(
                file,
                format!("blob #{blob} at byte {at} has an unreadable header"),
            )
        })?;
        let end = at + 4 + hlen + size;
        if end > len {
            return Err(pbf_err(file, format!("truncated: blob #{blob} at byte {at} declares {size} bytes of data but the file ends at byte {len}")));
        }
        r.seek(SeekFrom::Start(end))
            .map_err(|e| FormatError::io(&shown, e))?;
        at = end;
        blob += 1;
    }
    Ok(())
}

/// Calls `f` with every data block of the file, catching decoder panics.
fn each_block(
    path: &Path,
    file: &str,
    f: &mut dyn FnMut(&PrimitiveBlock) -> Result<Flow, FormatError>,
) -> Result<(), FormatError> {
    let run = || -> Result<(), FormatError> {
        let reader = BlobReader::from_path(path).map_err(|e| {
            FormatError::io(
                &path.display().to_string(),
                std::io::Error::other(e.to_string()),
            )
        })?;
        for (i, blob) in reader.enumerate() {
            let blob = blob.map_err(|e| pbf_err(file, format!("blob #{i}: {e}")))?;
            match blob
                .decode()
                .map_err(|e| pbf_err(file, format!("blob #{i}: {e}")))?
            {
                BlobDecode::OsmHeader(h) => {
                    if let Some(feat) = h.required_features().iter().find(|f| {
                        !matches!(
                            f.as_str(),
                            "OsmSchema-V0.6" | "DenseNodes" | "HistoricalInformation"
                        )
                    }) {
                        return Err(pbf_err(
                            file,
                            format!("requires the unsupported feature {feat:?}"),
                        ));
                    }
                }
                BlobDecode::OsmData(block) => {
                    if f(&block)?.is_break() {
                        return Ok(());
                    }
                }
                BlobDecode::Unknown(_) => {}
            }
        }
        Ok(())
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(r) => r,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "decoder failure".into());
            Err(pbf_err(file, format!("corrupt block ({what})")))
        }
    }
}

/// A way or relation waiting for its node coordinates: `refs` are a way's nodes or a relation's
/// member ways, `nodes` a relation's member nodes.
struct Pending {
    id: OsmId,
    tags: OsmTags,
    refs: Vec<i64>,
    nodes: Vec<i64>,
}

fn location(file: &str, id: OsmId, lat: f64, lng: f64) -> Result<LatLng, FormatError> {
    LatLng::new(lat, lng).map_err(|source| FormatError::Coordinates {
        file: file.to_owned(),
        at: Position::Osm(id),
        source,
    })
}

/// Reads the restaurants, parkings and toilets of an OSM PBF extract (see `osm_tags` for the
/// mapping), calling `sink` with each place (nodes first, then ways, then relations) or problem.
/// `only` keeps one kind. Places are stamped with [`Source::OsmPbf`] at `now`. Returns counts by
/// amenity and element type.
pub fn read_osm_pbf(
    path: &Path,
    only: Option<Kind>,
    now: DateTime<Utc>,
    sink: &mut dyn FnMut(Result<Place, FormatError>) -> Flow,
) -> Result<OsmStats, FormatError> {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let file = file.as_str();
    check_framing(path, file)?;
    let mut stats = OsmStats::default();

    // Pass 1: relations and the ways they need.
    let mut relations: Vec<Pending> = Vec::new();
    let mut needed_ways: HashSet<i64> = HashSet::new();
    let mut needed_nodes: HashSet<i64> = HashSet::new();
    each_block(path, file, &mut |block| {
        for group in block.groups() {
            for rel in group.relations() {
                let tags = OsmTags::collect(rel.tags());
                if tags.kind(only).is_none() {
                    continue;
                }
                let (mut refs, mut nodes) = (Vec::new(), Vec::new());
                for m in rel.members() {
                    match m.member_type {
                        RelMemberType::Way => {
                            needed_ways.insert(m.member_id);
                            refs.push(m.member_id);
                        }
                        RelMemberType::Node => {
                            needed_nodes.insert(m.member_id);
                            nodes.push(m.member_id);
                        }
                        RelMemberType::Relation => {}
                    }
                }
                relations.push(Pending {
                    id: osm_id(OsmType::Relation, rel.id()),
                    tags,
                    refs,
                    nodes,
                });
            }
        }
        Ok(ControlFlow::Continue(()))
    })?;

    // Pass 2: ways that are places or members of relations that are.
    let mut ways: Vec<Pending> = Vec::new();
    let mut member_ways: HashMap<i64, Vec<i64>> = HashMap::new();
    each_block(path, file, &mut |block| {
        for group in block.groups() {
            for way in group.ways() {
                let tags = OsmTags::collect(way.tags());
                let relevant = tags.kind(only).is_some();
                let member = needed_ways.contains(&way.id());
                if !relevant && !member {
                    continue;
                }
                let refs: Vec<i64> = way.refs().collect();
                needed_nodes.extend(refs.iter().copied());
                if member {
                    member_ways.insert(way.id(), refs.clone());
                }
                if relevant {
                    ways.push(Pending {
                        id: osm_id(OsmType::Way, way.id()),
                        tags,
                        refs,
                        nodes: Vec::new(),
                    });
                }
            }
        }
        Ok(ControlFlow::Continue(()))
    })?;

    // Pass 3: nodes that are places; coordinates of the nodes ways and relations need.
    let mut coords: HashMap<i64, (f64, f64)> = HashMap::new();
    let mut stopped = false;
    {
        let mut node = |id: i64, lat: f64, lng: f64, tags: OsmTags, stats: &mut OsmStats| -> Flow {
            if needed_nodes.contains(&id) {
                coords.insert(id, (lat, lng));
            }
            if tags.kind(only).is_none() {
                return ControlFlow::Continue(());
            }
            let oid = osm_id(OsmType::Node, id);
            let item = location(file, oid, lat, lng).and_then(|loc| {
                tags.to_place(oid, Some(loc), Source::OsmPbf, now)
                    .ok_or_else(|| pbf_err(file, format!("node {id} has no mapped amenity")))
            });
            if item.is_ok() {
                stats.count(tags.amenity.as_deref().unwrap_or(""), OsmType::Node, true);
            }
            sink(item)
        };
        each_block(path, file, &mut |block| {
            for group in block.groups() {
                for n in group.nodes() {
                    if node(
                        n.id(),
                        n.lat(),
                        n.lon(),
                        OsmTags::collect(n.tags()),
                        &mut stats,
                    )
                    .is_break()
                    {
                        stopped = true;
                        return Ok(ControlFlow::Break(()));
                    }
                }
                for n in group.dense_nodes() {
                    if node(
                        n.id(),
                        n.lat(),
                        n.lon(),
                        OsmTags::collect(n.tags()),
                        &mut stats,
                    )
                    .is_break()
                    {
                        stopped = true;
                        return Ok(ControlFlow::Break(()));
                    }
                }
            }
            Ok(ControlFlow::Continue(()))
        })?;
    }
    if stopped {
        return Ok(stats);
    }

    let mut emit = |p: &Pending, points: Vec<(f64, f64)>, stats: &mut OsmStats| -> Flow {
        let item = match centroid(&points) {
            Some((lat, lng)) => location(file, p.id, lat, lng).map(Some),
            None => Ok(None),
        }
        .and_then(|loc| {
            p.tags
                .to_place(p.id, loc, Source::OsmPbf, now)
                .map(|place| (place, loc.is_some()))
                .ok_or_else(|| pbf_err(file, format!("{} has no mapped amenity", p.id)))
        });
        match item {
            Ok((place, located)) => {
                stats.count(p.tags.amenity.as_deref().unwrap_or(""), p.id.kind, located);
                sink(Ok(place))
            }
            Err(e) => sink(Err(e)),
        }
    };
    for w in &ways {
        let points = w
            .refs
            .iter()
            .filter_map(|r| coords.get(r).copied())
            .collect();
        if emit(w, points, &mut stats).is_break() {
            return Ok(stats);
        }
    }
    for r in &relations {
        let mut points: Vec<(f64, f64)> = Vec::new();
        for m in &r.refs {
            if let Some(refs) = member_ways.get(m) {
                let ring: Vec<(f64, f64)> =
                    refs.iter().filter_map(|n| coords.get(n).copied()).collect();
                // Drop each closed ring's repeated point so it does not count twice.
                let n = ring.len();
                let ring = if n > 2 && ring[0] == ring[n - 1] {
                    &ring[..n - 1]
                } else {
                    &ring[..]
                };
                points.extend_from_slice(ring);
            }
        }
        if points.is_empty() {
            points.extend(r.nodes.iter().filter_map(|n| coords.get(n).copied()));
        }
        if emit(r, points, &mut stats).is_break() {
            return Ok(stats);
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_header_datasize_is_read() {
        // type = "OSMData" (field 1), datasize = 300 (field 3).
        let mut h = vec![0x0a, 7];
        h.extend_from_slice(b"OSMData");
        h.extend_from_slice(&[0x18, 0xac, 0x02]);
        assert_eq!(blob_datasize(&h), Some(300));
        assert_eq!(blob_datasize(&[0x18]), None);
        assert_eq!(blob_datasize(&[0x0a, 50, 1]), None);
    }

    #[test]
    fn decoder_panics_become_errors() {
        let rel = "../../../shared/data/osm/helsinki-center.osm.pbf";
        let mut path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
        if !path.exists() {
            path = Path::new("/work/shared/data/osm/helsinki-center.osm.pbf").to_path_buf();
        }
        let e = each_block(&path, "h.osm.pbf", &mut |_| panic!("simulated decoder bug"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("h.osm.pbf") && e.contains("simulated decoder bug"),
            "{e}"
        );
    }

    #[test]
    fn stats_use_amenity_and_type() {
        let mut s = OsmStats::default();
        s.count("pub", OsmType::Relation, false);
        assert_eq!(s.amenity_counts.get("pub/relation"), Some(&1));
        assert_eq!(s.without_location, 1);
    }
}
