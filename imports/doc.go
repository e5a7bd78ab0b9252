// Package imports reads file trees from outside Strand into the blob store
// and a domain.Tree: tar and tar.gz archives, git repositories (a path or a
// bundle file, at a branch, tag or commit, read with go-git) and
// directories of the host.
//
// What it owns: the rules that keep an import inside its tree. Every entry
// name is a relative path without ".." (an absolute name or a ".." fails
// the import), symlinks are kept as symlinks and must resolve inside the
// tree, hard links, devices, fifos and sockets are refused, and Limits bound
// the entries and bytes. A refused input fails with invalid_argument (or
// too_large for a limit) and leaves nothing but unreferenced blobs, which
// the blob collector removes: the caller adds a revision only on success.
//
// Modes: the permission bits (0777) of files and directories are kept;
// setuid, setgid and sticky bits are dropped. Git has only 0644 and 0755
// files, and directories are 0755. Xattrs are not imported.
package imports
