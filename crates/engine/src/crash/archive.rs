//! Writing a report archive: into a temporary file in the reports directory, fsynced, then
//! renamed into place. A reader never sees a partial report; a failed write leaves nothing.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use gitvisor_capture::Capture;

/// One file of the archive besides the workdir.
pub struct Part {
    pub path: String,
    pub bytes: Vec<u8>,
}

pub fn write(
    dir: &Path,
    file_name: &str,
    parts: &[Part],
    workdir: Option<&Capture>,
) -> std::io::Result<PathBuf> {
    let target = gitvisor_state::join_inside(dir, file_name).map_err(std::io::Error::other)?;
    let tmp =
        gitvisor_state::join_inside(dir, &format!(".tmp-{file_name}")).map_err(std::io::Error::other)?;
    let result = write_to(&tmp, parts, workdir).and_then(|()| {
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

fn write_to(tmp: &Path, parts: &[Part], workdir: Option<&Capture>) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(tmp)?;
    // Fast compression: a report must be written in well under a second for a large tree.
    let gz =
        flate2::write::GzEncoder::new(BufWriter::with_capacity(1 << 20, file), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for p in parts {
        let mut h = tar::Header::new_gnu();
        h.set_size(p.bytes.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut h, &p.path, p.bytes.as_slice())?;
    }
    if let Some(c) = workdir {
        gitvisor_capture::append_snapshot(&mut tar, c, Path::new("workdir"))?;
    }
    let gz = tar.into_inner()?;
    let buf = gz.finish()?;
    let file = buf.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    let mut f = file;
    f.flush()
}
