//! A service's log file with size-based rotation: `NAME.log`, then `NAME.log.1` (newest) up to
//! `NAME.log.N`; older ones are deleted.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub struct LogFile {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    pub max_size: u64,
    pub max_files: u32,
    buf: Vec<u8>,
}

impl LogFile {
    pub fn new(path: PathBuf, max_size: u64, max_files: u32) -> LogFile {
        LogFile { path, file: None, size: 0, max_size, max_files, buf: Vec::new() }
    }

    /// Queues one formatted line; `flush` writes the queue with one system call.
    pub fn push(&mut self, line: &str) {
        self.buf.extend_from_slice(line.as_bytes());
        self.buf.push(b'\n');
    }

    pub fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        let mut rest: &[u8] = &buf;
        while !rest.is_empty() {
            if self.file.is_none() {
                self.open()?;
            }
            if self.size > 0 && self.size + rest.len() as u64 > self.max_size {
                // Rotate at a line boundary: write the lines that still fit first.
                let room = self.max_size.saturating_sub(self.size) as usize;
                let cut = rest[..room.min(rest.len())]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map(|i| i + 1)
                    .unwrap_or(0);
                if cut > 0 {
                    self.write(&rest[..cut])?;
                    rest = &rest[cut..];
                }
                self.rotate()?;
                continue;
            }
            let take = if self.size == 0 && rest.len() as u64 > self.max_size {
                // A single batch larger than a whole file: split at the last line end that fits.
                let lim = (self.max_size as usize).min(rest.len());
                rest[..lim].iter().rposition(|&b| b == b'\n').map(|i| i + 1).unwrap_or(rest.len())
            } else {
                rest.len()
            };
            self.write(&rest[..take])?;
            rest = &rest[take..];
        }
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let f = self.file.as_mut().expect("opened");
        f.write_all(bytes)?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    fn open(&mut self) -> io::Result<()> {
        let f = OpenOptions::new().create(true).append(true).mode(0o600).open(&self.path)?;
        self.size = f.metadata()?.len();
        self.file = Some(f);
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        let numbered = |n: u32| -> PathBuf { rotated(&self.path, n) };
        if self.max_files == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let _ = std::fs::remove_file(numbered(self.max_files));
            for n in (1..self.max_files).rev() {
                let from = numbered(n);
                if from.exists() {
                    std::fs::rename(&from, numbered(n + 1))?;
                }
            }
            std::fs::rename(&self.path, numbered(1))?;
        }
        self.open()
    }
}

pub fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_at_the_size_limit_and_keeps_a_bounded_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.log");
        let mut f = LogFile::new(path.clone(), 100, 2);
        for i in 0..100 {
            f.push(&format!("line {i:04} ........"));
            f.flush().unwrap();
        }
        let main = std::fs::read_to_string(&path).unwrap();
        assert!(main.len() <= 100 && main.ends_with("line 0099 ........\n"), "{main}");
        assert!(std::fs::metadata(rotated(&path, 1)).unwrap().len() <= 100);
        assert!(rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists());
        // Every file holds whole lines only.
        for p in [path.clone(), rotated(&path, 1), rotated(&path, 2)] {
            let t = std::fs::read_to_string(&p).unwrap();
            assert!(t.lines().all(|l| l.starts_with("line ") && l.len() == 18), "{t}");
        }
    }

    #[test]
    fn a_line_longer_than_the_limit_is_still_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.log");
        let mut f = LogFile::new(path.clone(), 10, 1);
        f.push("short");
        f.push(&"x".repeat(50));
        f.flush().unwrap();
        let all =
            std::fs::read_to_string(&path).unwrap() + &std::fs::read_to_string(rotated(&path, 1)).unwrap();
        assert!(all.contains(&"x".repeat(50)));
    }
}
