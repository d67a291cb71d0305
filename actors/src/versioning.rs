//! Reads the version of the code an app runs from the git repository its directory is in
//! (PM2's vizion): a few small files of `.git`, read at each start of the app, never more
//! than `MAX_READ` bytes of any. No git binary, no network.

use std::io::Read;
use std::path::{Path, PathBuf};

use pmx_core::versioning::{
    Head, Versioning, commit_message, is_commit_id, packed_ref, parse_head, remote_url,
};

/// No file of a repository is read beyond this (a packed-refs file of a huge repository).
const MAX_READ: u64 = 4 * 1024 * 1024;

/// A file of the repository, never through a symlink (the daemon may be root and the
/// directory another user's), at most `MAX_READ` bytes.
fn open(path: &Path) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()
        .filter(|f| f.metadata().is_ok_and(|m| m.is_file()))
}

fn read_text(path: &Path) -> Option<String> {
    let mut text = String::new();
    open(path)?.take(MAX_READ).read_to_string(&mut text).ok()?;
    Some(text)
}

/// The git directory (and the common one, for a worktree) of the repository `dir` is in.
fn git_dirs(dir: &Path) -> Option<(PathBuf, PathBuf, PathBuf)> {
    for top in dir.ancestors() {
        let dot_git = top.join(".git");
        let Ok(meta) = std::fs::metadata(&dot_git) else {
            continue;
        };
        let git = if meta.is_dir() {
            dot_git
        } else {
            // A worktree or a submodule: `gitdir: PATH`.
            let text = read_text(&dot_git)?;
            top.join(text.trim().strip_prefix("gitdir:")?.trim())
        };
        let common = match read_text(&git.join("commondir")) {
            Some(common) => git.join(common.trim()),
            None => git.clone(),
        };
        return Some((top.to_path_buf(), git, common));
    }
    None
}

/// The repository `dir` is in, if any.
pub fn read(dir: &Path) -> Option<Versioning> {
    let (top, git, common) = git_dirs(dir)?;
    let head = parse_head(&read_text(&git.join("HEAD"))?)?;
    let (branch, revision) = match head {
        Head::Detached(id) => (None, Some(id)),
        Head::Branch(name) => {
            let reference = format!("refs/heads/{name}");
            let loose = read_text(&common.join(&reference))
                .map(|t| t.trim().to_string())
                .filter(|t| is_commit_id(t));
            let id =
                loose.or_else(|| packed_ref(&read_text(&common.join("packed-refs"))?, &reference));
            (Some(name), id)
        }
    };
    let comment = revision
        .as_deref()
        .and_then(|id| loose_commit_message(&common, id));
    Some(Versioning {
        kind: "git".into(),
        url: read_text(&common.join("config")).and_then(|c| remote_url(&c)),
        branch,
        revision,
        comment,
        repo_path: top.to_string_lossy().into_owned(),
    })
}

/// The first line of a commit's message, when the commit is a loose object.
fn loose_commit_message(common: &Path, id: &str) -> Option<String> {
    let path = common.join("objects").join(&id[..2]).join(&id[2..]);
    let file = open(&path)?;
    let mut object = Vec::new();
    flate2::read::ZlibDecoder::new(file.take(MAX_READ))
        .take(64 * 1024)
        .read_to_end(&mut object)
        .ok()?;
    commit_message(&object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_repository_is_found_from_a_subdirectory() {
        let dir = tempfile::tempdir().unwrap();
        let git = dir.path().join(".git");
        std::fs::create_dir_all(git.join("refs/heads")).unwrap();
        std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::write(
            git.join("config"),
            "[remote \"origin\"]\n\turl = https://h/app.git\n",
        )
        .unwrap();
        let id = "0123456789abcdef0123456789abcdef01234567";
        std::fs::write(git.join("refs/heads/main"), format!("{id}\n")).unwrap();
        let object_dir = git.join("objects").join(&id[..2]);
        std::fs::create_dir_all(&object_dir).unwrap();
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b"commit 40\0tree x\nauthor y\n\nShip it\n")
            .unwrap();
        std::fs::write(object_dir.join(&id[2..]), z.finish().unwrap()).unwrap();
        let sub = dir.path().join("src/app");
        std::fs::create_dir_all(&sub).unwrap();

        let v = read(&sub).unwrap();
        assert_eq!(v.url.as_deref(), Some("https://h/app.git"));
        assert_eq!(v.branch.as_deref(), Some("main"));
        assert_eq!(v.revision.as_deref(), Some(id));
        assert_eq!(v.comment.as_deref(), Some("Ship it"));
        assert_eq!(v.repo_path, dir.path().to_string_lossy());

        // A file of the repository that is a symlink is not followed.
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, "[remote \"origin\"]\n\turl = secret\n").unwrap();
        std::fs::remove_file(git.join("config")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, git.join("config")).unwrap();
        assert_eq!(read(&sub).unwrap().url, None);
    }
}
