//! Writing a report archive: into a temporary file in the reports directory, fsynced, then
//! renamed into place. A reader never sees a partial report; a failed write leaves nothing.
//!
//! The archive is one gzip stream of one tar whose first entry is `report.json`, so listing
//! the reports reads a few KiB of each, whatever their size. But `report.json` describes the
//! working directory, and `workdir/` is written as the directory is walked
//! ([`gitvisor_capture::stream_dir`]), so that no file's bytes are held: the walk compresses
//! `workdir/` first, with the tar's end, into a [`Spool`] (a temporary file without a name),
//! as a raw deflate stream of its own. Once the walk is done, the report's own files are
//! compressed as a raw deflate stream ended by a sync flush (every block out, byte-aligned,
//! none marked final), and the archive is a gzip header, those, the spool copied in by the
//! kernel, and a trailer whose CRC-32 combines the two streams' — how pigz joins blocks it
//! compressed apart. Deflate back-references never reach before the stream that made them, so
//! a reader sees one ordinary gzip member.

use std::fs::File;
use std::io::{self, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use flate2::write::DeflateEncoder;
use flate2::{Compression, Crc, CrcWriter};
use gitvisor_capture::{stream_dir, Limits, StreamError, StreamOptions, Streamed};

/// One file of the archive besides the workdir.
pub struct Part {
    pub path: String,
    pub bytes: Vec<u8>,
}

/// Fast compression: a report must be written in well under a second for a large tree.
const LEVEL: Compression = Compression::fast();

/// As flate2 writes it at `LEVEL`: no name, no time (so the same archive has the same bytes),
/// "fastest" in the extra flags, operating system unknown.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255];

/// The two zero blocks that end a tar archive.
const TAR_END: usize = 1024;

/// The end of a report's archive, compressed ahead of its start: `workdir/` (when there is
/// one) and the tar's end.
pub struct Spool {
    tar: tar::Builder<CrcWriter<DeflateEncoder<BufWriter<File>>>>,
}

impl Spool {
    /// A spool in `dir`, the reports directory: on the report's file system, and with no name,
    /// so nothing is left behind if the engine dies while it writes.
    pub fn new(dir: &Path) -> io::Result<Spool> {
        let file = tempfile::tempfile_in(dir)?;
        let deflate = DeflateEncoder::new(BufWriter::with_capacity(64 * 1024, file), LEVEL);
        Ok(Spool { tar: tar::Builder::new(CrcWriter::new(deflate)) })
    }

    /// Walks `root` into the spool as `workdir/`.
    pub fn workdir(
        &mut self,
        root: &Path,
        limits: &Limits,
        options: &StreamOptions,
    ) -> Result<Streamed, StreamError> {
        stream_dir(root, limits, options, &mut self.tar, Path::new("workdir"))
    }
}

/// Writes the report `file_name` into `dir`: `parts`, then what `rest` holds (an empty spool
/// for none).
pub fn write(dir: &Path, file_name: &str, parts: &[Part], rest: Spool) -> io::Result<PathBuf> {
    let target = gitvisor_state::join_inside(dir, file_name).map_err(io::Error::other)?;
    let tmp = gitvisor_state::join_inside(dir, &format!(".tmp-{file_name}")).map_err(io::Error::other)?;
    let result = write_to(&tmp, parts, rest).and_then(|()| {
        std::fs::rename(&tmp, &target)?;
        File::open(dir)?.sync_all()
    });
    match result {
        Ok(()) => Ok(target),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn write_to(tmp: &Path, parts: &[Part], rest: Spool) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(tmp)?;
    let head = parts_tar(parts)?;
    let mut crc = Crc::new();
    crc.update(&head);
    let mut out = BufWriter::new(file);
    out.write_all(&GZIP_HEADER)?;
    out.write_all(&deflate_unended(&head)?)?;
    let mut file = out.into_inner().map_err(|e| e.into_error())?;
    // The tar's end is written here, and the spool's deflate stream ended.
    let rest = rest.tar.into_inner()?;
    crc.combine(rest.crc());
    let mut spooled = rest.into_inner().finish()?.into_inner().map_err(|e| e.into_error())?;
    spooled.rewind()?;
    io::copy(&mut spooled, &mut file)?;
    file.write_all(&crc.sum().to_le_bytes())?;
    file.write_all(&crc.amount().to_le_bytes())?;
    file.sync_all()
}

/// The parts as tar entries, without the tar's end: the spool's entries and end follow.
fn parts_tar(parts: &[Part]) -> io::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for p in parts {
        let mut h = tar::Header::new_gnu();
        h.set_size(p.bytes.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, &p.path, p.bytes.as_slice())?;
    }
    let mut bytes = tar.into_inner()?;
    bytes.truncate(bytes.len() - TAR_END);
    Ok(bytes)
}

/// `bytes` as a raw deflate stream left open: a sync flush puts out every block, byte-aligned,
/// none marked final, so another stream's blocks may follow.
fn deflate_unended(bytes: &[u8]) -> io::Result<Vec<u8>> {
    let mut deflate = DeflateEncoder::new(Vec::new(), LEVEL);
    deflate.write_all(bytes)?;
    deflate.flush()?;
    // Taken before the encoder is dropped: dropping it ends the stream, into the empty vector.
    Ok(std::mem::take(deflate.get_mut()))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn parts() -> Vec<Part> {
        vec![
            Part { path: "report.json".into(), bytes: b"{\"format\": 1}\n".to_vec() },
            Part { path: "logs/tail.log".into(), bytes: b"line\n".repeat(5000) },
        ]
    }

    /// The archive's entries and their bytes, read with flate2's single-member decoder.
    fn entries(archive: &Path) -> Vec<(String, Vec<u8>)> {
        let gz = flate2::read::GzDecoder::new(File::open(archive).unwrap());
        let mut out = Vec::new();
        for entry in tar::Archive::new(gz).entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            out.push((entry.path().unwrap().to_string_lossy().into_owned(), bytes));
        }
        out
    }

    fn gzip_tests_it(archive: &Path) {
        let out = std::process::Command::new("gzip").arg("-t").arg(archive).output().unwrap();
        assert!(out.status.success(), "gzip -t: {}", String::from_utf8_lossy(&out.stderr));
    }

    #[test]
    fn a_report_with_its_workdir_is_one_gzip_member_with_report_json_first() {
        let reports = tempfile::tempdir().unwrap();
        let work = tempfile::tempdir().unwrap();
        std::fs::write(work.path().join("state.txt"), "hello\n").unwrap();
        let noise: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
        std::fs::write(work.path().join("noise.bin"), &noise).unwrap();
        let mut spool = Spool::new(reports.path()).unwrap();
        let streamed = spool.workdir(work.path(), &Limits::default(), &StreamOptions::default()).unwrap();
        assert_eq!(streamed.capture.file_count(), 2);

        let path = write(reports.path(), "r.tar.gz", &parts(), spool).unwrap();

        gzip_tests_it(&path);
        let got = entries(&path);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["report.json", "logs/tail.log", "workdir", "workdir/noise.bin", "workdir/state.txt"]
        );
        assert_eq!(got[1].1, b"line\n".repeat(5000));
        assert_eq!(got[3].1, noise);
        assert_eq!(got[4].1, b"hello\n");
        let left: Vec<_> =
            std::fs::read_dir(reports.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(left, ["r.tar.gz"], "the spool leaves nothing");
    }

    #[test]
    fn a_report_without_workdir_ends_with_an_empty_spool() {
        let reports = tempfile::tempdir().unwrap();
        let spool = Spool::new(reports.path()).unwrap();
        let path = write(reports.path(), "r.tar.gz", &parts(), spool).unwrap();
        gzip_tests_it(&path);
        let names: Vec<String> = entries(&path).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["report.json", "logs/tail.log"]);
    }

    #[test]
    fn a_failed_write_leaves_nothing() {
        let reports = tempfile::tempdir().unwrap();
        let spool = Spool::new(reports.path()).unwrap();
        let bad = [Part { path: "../escape".into(), bytes: Vec::new() }];
        assert!(write(reports.path(), "r.tar.gz", &bad, spool).is_err());
        assert_eq!(std::fs::read_dir(reports.path()).unwrap().count(), 0, "no temporary file, no spool");
    }
}
