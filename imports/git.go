package imports

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/strand-dev/strand/domain"
)

// Git reads the tree of a commit of a git repository: path is a
// repository (with a work tree or bare) or a bundle file, ref a branch, a
// tag, a commit id or any revision go-git resolves ("" is HEAD). Only
// committed content is read, never a work tree. Submodules are skipped
// (their content is another repository).
//
// go-git cannot read bundles, so a bundle is first cloned with the git
// command (`git clone --mirror BUNDLE TMP`) into a temporary directory:
// the host needs git installed for bundles, not for repositories.
func Git(ctx context.Context, path, ref string, blobs Blobs, lim Limits, progress Progress) (Result, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Result{}, invalid("git repository %q cannot be read: %s", truncate(path), pathProblem(err))
	}
	if fi.Mode().IsRegular() {
		tmp, err := os.MkdirTemp("", "strand-bundle-")
		if err != nil {
			return Result{}, domain.Wrap(err, "temporary directory for a bundle")
		}
		defer os.RemoveAll(tmp)
		repo := filepath.Join(tmp, "repo.git")
		cmd := exec.CommandContext(ctx, "git", "clone", "--quiet", "--mirror", "--", path, repo)
		cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			if errors.Is(err, exec.ErrNotFound) {
				return Result{}, domain.Errorf(domain.CodeUnavailable, "reading a git bundle needs the git command on the server")
			}
			if ctx.Err() != nil {
				return Result{}, ctx.Err()
			}
			return Result{}, invalid("%q is not a readable git bundle: %s", truncate(path), truncate(strings.TrimSpace(stderr.String())))
		}
		path = repo
	}
	repo, err := git.PlainOpenWithOptions(path, &git.PlainOpenOptions{DetectDotGit: false})
	if err != nil {
		return Result{}, invalid("%q is not a git repository: %v", truncate(path), err)
	}
	var hash plumbing.Hash
	if ref == "" {
		head, err := repo.Head()
		if err != nil {
			return Result{}, domain.Errorf(domain.CodeNotFound, "the repository has no HEAD commit: %v", err)
		}
		hash = head.Hash()
	} else {
		h, err := repo.ResolveRevision(plumbing.Revision(ref))
		if err != nil {
			return Result{}, domain.Errorf(domain.CodeNotFound, "ref %q not found in the repository", truncate(ref))
		}
		hash = *h
	}
	commit, err := repo.CommitObject(hash)
	if err != nil {
		return Result{}, domain.Errorf(domain.CodeNotFound, "commit %s not found: %v", hash, err)
	}
	tree, err := commit.Tree()
	if err != nil {
		return Result{}, invalid("commit %s has no readable tree: %v", hash, err)
	}
	b := newBuilder(ctx, blobs, lim, progress)
	w := object.NewTreeWalker(tree, true, nil)
	defer w.Close()
	for {
		name, entry, err := w.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Result{}, invalid("reading the tree of %s: %v", hash, err)
		}
		if err := gitEntry(b, repo, name, entry); err != nil {
			return Result{}, err
		}
	}
	res, err := b.finish()
	res.Commit = hash.String()
	return res, err
}

func gitEntry(b *builder, repo *git.Repository, name string, e object.TreeEntry) error {
	switch e.Mode {
	case filemode.Dir:
		return b.dir(name, 0o755)
	case filemode.Submodule:
		return nil
	case filemode.Regular, filemode.Deprecated, filemode.Executable, filemode.Symlink:
	default:
		return invalid("entry %q has the unsupported git mode %o", truncate(name), uint32(e.Mode))
	}
	blob, err := repo.BlobObject(e.Hash)
	if err != nil {
		return invalid("blob of %q: %v", truncate(name), err)
	}
	r, err := blob.Reader()
	if err != nil {
		return invalid("blob of %q: %v", truncate(name), err)
	}
	defer r.Close()
	if e.Mode == filemode.Symlink {
		target, err := io.ReadAll(io.LimitReader(r, domain.MaxTargetBytes+1))
		if err != nil {
			return invalid("symlink %q: %v", truncate(name), err)
		}
		return b.symlink(name, string(target))
	}
	mode := uint32(0o644)
	if e.Mode == filemode.Executable {
		mode = 0o755
	}
	return b.file(name, mode, blob.Size, r)
}

func pathProblem(err error) string {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "no such file or directory"
	case errors.Is(err, os.ErrPermission):
		return "permission denied"
	}
	return "cannot be opened"
}
