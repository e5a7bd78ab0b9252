package contentcache

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Packs hold many small entries in one file, so that a mount's cold read
// of a tree of small files creates a few files rather than one per
// content: creating a file cost 0.15-0.8 ms of CPU on the machines of
// docs/benchmarks.md, and 10,000 of them were the largest cost of a cold
// read of 10,000 files (issue 21).
//
// A pack is DIR/packs/<sha256 of its index>.pack, written to a temporary
// file and renamed into place, so a pack is either whole or absent:
//
//	content of every entry, one after the other
//	index: per entry its hash (32 bytes), offset and size (8 bytes each, big endian)
//	trailer: entry count (8 bytes), index offset (8 bytes), packMagic (8 bytes)
//
// Each process keeps the index of every pack in memory and reads the
// packs folder again when it misses and the folder has changed (another
// process wrote or evicted a pack). An entry read from a pack is checked
// against its hash like any other; a pack holding a damaged entry is
// removed whole. Eviction removes whole packs, by write time, like single
// entries.
const (
	packDir       = "packs"
	packSuffix    = ".pack"
	packMagic     = "strndpk1"
	packEntrySize = 32 + 8 + 8
	packTrailer   = 8 + 8 + 8
)

// PackEntry is one content of a pack: its hash and bytes.
type PackEntry struct {
	Hash string
	Data []byte
}

// pack is one pack file, open for reading.
type pack struct {
	name string
	f    *os.File
	size int64
}

type packLoc struct {
	p         *pack
	off, size int64
}

// packs is a cache's index of its packs. Guarded by Cache.pmu.
type packs struct {
	byName  map[string]*pack
	entries map[string]packLoc
	seen    time.Time // mtime of the packs folder when last read
}

// Entry is content opened for reading in place: a file of its own or a
// part of a pack.
type Entry interface {
	io.Reader
	io.ReaderAt
	io.Closer
}

// packEntry reads a part of a pack; closing it leaves the pack open.
type packEntry struct{ *io.SectionReader }

func (packEntry) Close() error { return nil }

// PutPack stores many entries in one pack file. Entries a pack this
// process knows holds already, and repeats, are left out (a content held
// as a file of its own may be packed again: looking for it cost a stat of
// the disk per entry, half the CPU of storing a pack); each content is
// checked against its hash (ErrMismatch, and nothing is stored, when one
// does not match).
func (c *Cache) PutPack(entries []PackEntry) error {
	// The pack is written from one buffer, sized up front: grown by
	// doubling, copying it was 63 % of the cache writer's time in a cold
	// read of a 10,000-file mount (bench row 12).
	size := packTrailer
	for _, e := range entries {
		size += len(e.Data) + packEntrySize
	}
	var body bytes.Buffer
	body.Grow(size)
	index := make([]byte, 0, len(entries)*packEntrySize)
	seen := make(map[string]bool, len(entries))
	for _, e := range entries {
		if !validHash(e.Hash) {
			return ErrBadHash
		}
		if sum := sha256.Sum256(e.Data); hex.EncodeToString(sum[:]) != e.Hash {
			return ErrMismatch
		}
		if seen[e.Hash] || c.packed(e.Hash) {
			continue
		}
		seen[e.Hash] = true
		raw, _ := hex.DecodeString(e.Hash)
		index = append(index, raw...)
		index = binary.BigEndian.AppendUint64(index, uint64(body.Len()))
		index = binary.BigEndian.AppendUint64(index, uint64(len(e.Data)))
		body.Write(e.Data)
	}
	if len(seen) == 0 {
		return nil
	}
	indexAt := body.Len()
	body.Write(index)
	var trailer [packTrailer]byte
	binary.BigEndian.PutUint64(trailer[0:], uint64(len(seen)))
	binary.BigEndian.PutUint64(trailer[8:], uint64(indexAt))
	copy(trailer[16:], packMagic)
	body.Write(trailer[:])
	sum := sha256.Sum256(index)
	dir := filepath.Join(c.dir, packDir)
	name := hex.EncodeToString(sum[:]) + packSuffix
	if err := c.writeAtomic(dir, name, body.Bytes()); err != nil {
		return fmt.Errorf("cache pack: %w", err)
	}
	c.pmu.Lock()
	_, err := c.loadPackLocked(name)
	c.pmu.Unlock()
	if err != nil {
		return fmt.Errorf("cache pack: %w", err)
	}
	if c.size.Add(int64(body.Len())) > c.maxBytes {
		return c.Trim()
	}
	return nil
}

// writeAtomic writes data to dir/name through a temporary file.
func (c *Cache) writeAtomic(dir, name string, data []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	_, werr := tmp.Write(data)
	if err := tmp.Chmod(0o644); werr == nil {
		werr = err
	}
	if err := tmp.Close(); werr == nil {
		werr = err
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), filepath.Join(dir, name))
	}
	if werr != nil {
		_ = os.Remove(tmp.Name())
	}
	return werr
}

// packed reports whether a pack this process has indexed holds h,
// without looking at the packs folder.
func (c *Cache) packed(h string) bool {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	_, ok := c.packs.entries[h]
	return ok
}

// inPack returns where a pack holds h, reading the packs folder again
// when it has changed since it was last read.
func (c *Cache) inPack(h string) (packLoc, bool) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if loc, ok := c.packs.entries[h]; ok {
		return loc, true
	}
	if c.refreshPacksLocked() {
		loc, ok := c.packs.entries[h]
		return loc, ok
	}
	return packLoc{}, false
}

// refreshPacksLocked reads the packs folder if it changed since the last
// time: new packs are indexed, packs removed (evicted, by this process or
// another) are forgotten. It reports whether anything changed.
func (c *Cache) refreshPacksLocked() bool {
	dir := filepath.Join(c.dir, packDir)
	info, err := os.Stat(dir)
	if err != nil || info.ModTime().Equal(c.packs.seen) {
		return false
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	c.packs.seen = info.ModTime()
	present := map[string]bool{}
	for _, de := range des {
		name := de.Name()
		if !strings.HasSuffix(name, packSuffix) {
			continue
		}
		present[name] = true
		if c.packs.byName[name] == nil {
			_, _ = c.loadPackLocked(name) // a pack being evicted: skipped
		}
	}
	for name, p := range c.packs.byName {
		if !present[name] {
			c.dropPackLocked(p)
		}
	}
	return true
}

// loadPackLocked opens a pack and adds its entries to the index.
func (c *Cache) loadPackLocked(name string) (*pack, error) {
	if p := c.packs.byName[name]; p != nil {
		return p, nil
	}
	f, err := os.Open(filepath.Join(c.dir, packDir, name))
	if err != nil {
		return nil, err
	}
	p, locs, err := readPackIndex(name, f)
	if err != nil {
		f.Close() //nolint:errcheck // read-only
		return nil, err
	}
	c.packs.byName[name] = p
	for h, loc := range locs {
		if _, ok := c.packs.entries[h]; !ok {
			c.packs.entries[h] = loc
		}
	}
	return p, nil
}

// readPackIndex reads the index of a pack file.
func readPackIndex(name string, f *os.File) (*pack, map[string]packLoc, error) {
	info, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	size := info.Size()
	bad := fmt.Errorf("pack %s: malformed", name)
	if size < packTrailer {
		return nil, nil, bad
	}
	var trailer [packTrailer]byte
	if _, err := f.ReadAt(trailer[:], size-packTrailer); err != nil {
		return nil, nil, err
	}
	n := binary.BigEndian.Uint64(trailer[0:])
	at := binary.BigEndian.Uint64(trailer[8:])
	if string(trailer[16:]) != packMagic || at > uint64(size) || n != (uint64(size)-packTrailer-at)/packEntrySize {
		return nil, nil, bad
	}
	index := make([]byte, int(n)*packEntrySize)
	if _, err := f.ReadAt(index, int64(at)); err != nil {
		return nil, nil, err
	}
	p := &pack{name: name, f: f, size: size}
	locs := make(map[string]packLoc, n)
	for i := 0; i < len(index); i += packEntrySize {
		off := binary.BigEndian.Uint64(index[i+32:])
		sz := binary.BigEndian.Uint64(index[i+40:])
		if off > at || sz > at-off {
			return nil, nil, bad
		}
		locs[hex.EncodeToString(index[i:i+32])] = packLoc{p: p, off: int64(off), size: int64(sz)}
	}
	return p, locs, nil
}

// dropPackLocked forgets a pack and closes it.
func (c *Cache) dropPackLocked(p *pack) {
	delete(c.packs.byName, p.name)
	for h, loc := range c.packs.entries {
		if loc.p == p {
			delete(c.packs.entries, h)
		}
	}
	p.f.Close() //nolint:errcheck // read-only
}

// removePack removes a pack whose entry failed its check: its other
// entries are fetched again when needed.
func (c *Cache) removePack(p *pack) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	if c.packs.byName[p.name] != p {
		return
	}
	c.dropPackLocked(p)
	if err := os.Remove(filepath.Join(c.dir, packDir, p.name)); err == nil || errors.Is(err, fs.ErrNotExist) {
		c.size.Add(-p.size)
	}
}

// openPacked opens h in a pack, if a pack holds it.
func (c *Cache) openPacked(h string) (Entry, bool) {
	loc, ok := c.inPack(h)
	if !ok {
		return nil, false
	}
	return packEntry{io.NewSectionReader(loc.p.f, loc.off, loc.size)}, true
}

// getPacked reads and checks h from a pack.
func (c *Cache) getPacked(h string) ([]byte, bool) {
	loc, ok := c.inPack(h)
	if !ok {
		return nil, false
	}
	data := make([]byte, loc.size)
	if _, err := loc.p.f.ReadAt(data, loc.off); err != nil && !(errors.Is(err, io.EOF) && loc.size == 0) {
		return nil, false
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != h {
		c.removePack(loc.p)
		return nil, false
	}
	return data, true
}
