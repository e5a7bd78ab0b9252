package mount

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// Set-ID bits and file capabilities, cleared by the mount.
//
// A write, a truncate or a change of owner clears a file's set-user-ID
// bit, its set-group-ID bit (dropSetID says when) and its
// capabilities (the security.capability extended attribute), so that
// changed content does not keep privileges granted to the old. Left to
// the kernel, that check costs round trips: a GETXATTR of
// security.capability before every write(2) of every file (a 1 MiB file
// written 4 KiB at a time: 256 writes and 256 GETXATTRs) and a GETATTR
// before every chown.
//
// The mount asks for FUSE_HANDLE_KILLPRIV_V2 instead, and clears them
// itself. The kernel then checks a file once (it keeps S_NOSEC on it
// after finding nothing to clear, until the file's attributes change
// through it) and says when set-ID bits must go: FUSE_WRITE_KILL_SUIDGID
// on a write by a caller without CAP_FSETID, FATTR_KILL_SUIDGID on a
// change of owner and on a truncate by such a caller. Capabilities go on
// every write, whoever the caller: the kernel still removes those it sees
// at its one check, and the mount those it could not see, such as a
// capability another writer set, which arrives through the live tail.
//
// Opens need nothing: the mount does not ask for atomic O_TRUNC, so the
// kernel truncates through SETATTR (and flags it there), and a CREATE
// always makes a new file.
type privFS struct {
	fuse.RawFileSystem
}

// securityCapability is the extended attribute that holds a file's
// capabilities.
const securityCapability = "security.capability"

func (p *privFS) Write(cancel <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	if st := p.beforeWrite(cancel, in); !st.Ok() {
		return 0, st
	}
	return p.RawFileSystem.Write(cancel, in, data)
}

// Writev is what go-fuse's server calls first for a WRITE. A payload
// split in several pieces the node bridge writes only through Write (it
// answers ENOSYS); that fallback is made here, so that the checks above
// run once.
func (p *privFS) Writev(cancel <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	if st := p.beforeWrite(cancel, in); !st.Ok() {
		return 0, st
	}
	n, st := p.RawFileSystem.Writev(cancel, in, data)
	if st != fuse.ENOSYS {
		return n, st
	}
	return p.RawFileSystem.Write(cancel, in, bytes.Join(data, nil))
}

// beforeWrite clears what a write clears, before the data lands.
func (p *privFS) beforeWrite(cancel <-chan struct{}, in *fuse.WriteIn) fuse.Status {
	if in.WriteFlags&fuse.WRITE_KILL_SUIDGID != 0 {
		if st := p.killSetID(cancel, &in.InHeader); !st.Ok() {
			return st
		}
	}
	if st := p.RawFileSystem.RemoveXAttr(cancel, &in.InHeader, securityCapability); !st.Ok() && st != fuse.ENODATA {
		return st
	}
	return fuse.OK
}

func (p *privFS) SetAttr(cancel <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	if in.Valid&fuse.FATTR_KILL_SUIDGID != 0 {
		in.Valid &^= fuse.FATTR_KILL_SUIDGID
		var a fuse.AttrOut
		if st := p.RawFileSystem.GetAttr(cancel, &fuse.GetAttrIn{InHeader: in.InHeader}, &a); !st.Ok() {
			return st
		}
		if a.Mode&syscall.S_IFMT == syscall.S_IFREG {
			mode := a.Mode
			if in.Valid&fuse.FATTR_MODE != 0 {
				mode = in.Mode
			}
			if kept := dropSetID(mode, a.Gid, in.Caller); kept != a.Mode || in.Valid&fuse.FATTR_MODE != 0 {
				in.Valid |= fuse.FATTR_MODE
				in.Mode = kept
			}
		}
	}
	return p.RawFileSystem.SetAttr(cancel, in, out)
}

// killSetID clears a regular file's set-ID bits, as a chmod of the mount
// would (a chmod event when the file has no unflushed writes).
func (p *privFS) killSetID(cancel <-chan struct{}, h *fuse.InHeader) fuse.Status {
	var a fuse.AttrOut
	if st := p.RawFileSystem.GetAttr(cancel, &fuse.GetAttrIn{InHeader: *h}, &a); !st.Ok() {
		return st
	}
	kept := dropSetID(a.Mode, a.Gid, h.Caller)
	if a.Mode&syscall.S_IFMT != syscall.S_IFREG || kept == a.Mode {
		return fuse.OK
	}
	in := fuse.SetAttrIn{SetAttrInCommon: fuse.SetAttrInCommon{InHeader: *h, Valid: fuse.FATTR_MODE, Mode: kept}}
	var out fuse.AttrOut
	return p.RawFileSystem.SetAttr(cancel, &in, &out)
}

// dropSetID is mode without the set-ID bits that a write, a truncate or a
// change of owner by caller drops, as Linux decides it for a local file
// (setattr_should_drop_suidgid): set-user-ID always; set-group-ID when
// group execute is set (without it the bit means mandatory locking), or
// when the caller is neither in the file's group gid nor root.
func dropSetID(mode, gid uint32, caller fuse.Caller) uint32 {
	mode &^= syscall.S_ISUID
	if mode&syscall.S_ISGID != 0 && (mode&syscall.S_IXGRP != 0 || caller.Uid != 0 && !inGroup(caller, gid)) {
		mode &^= syscall.S_ISGID
	}
	return mode
}

// inGroup reports whether caller is in group gid: its own group, or one of
// the supplementary groups of its process (read from /proc; a process
// that is gone counts as not in the group, which drops the bit).
func inGroup(caller fuse.Caller, gid uint32) bool {
	if caller.Gid == gid {
		return true
	}
	status, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(caller.Pid), 10) + "/status")
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(status)) {
		groups, ok := strings.CutPrefix(line, "Groups:")
		if !ok {
			continue
		}
		for _, g := range strings.Fields(groups) {
			if g == strconv.FormatUint(uint64(gid), 10) {
				return true
			}
		}
	}
	return false
}
