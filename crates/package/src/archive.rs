//! `package create`: a `.tgz` as KUDO writes it (`pkg/kudoctl/packages/writer`): regular
//! files, paths relative to the package root, modification time zero, uid/gid 0 and owner
//! `root`. Files go in path order and gzip gets no timestamp or name, so the same package
//! makes the same bytes on any machine.

use std::io::Write;

use crate::{Package, PackageError};

/// The archive's bytes.
pub fn create(package: &Package) -> Result<Vec<u8>, PackageError> {
    let archive_error = |e: std::io::Error| PackageError::Archive(e.to_string());
    let gzip = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gzip);
    for (path, content) in &package.files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_username("root").map_err(archive_error)?;
        header.set_groupname("root").map_err(archive_error)?;
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, path, content.as_slice()).map_err(archive_error)?;
    }
    let gzip = tar.into_inner().map_err(archive_error)?;
    let mut bytes = gzip.finish().map_err(archive_error)?;
    bytes.flush().map_err(archive_error)?;
    Ok(bytes)
}
