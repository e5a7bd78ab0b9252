package projections

import (
	"slices"
	"sort"
)

// sortKey orders views: by a time (unix nanoseconds), then by id.
type sortKey struct {
	t  int64
	id string
}

func (a sortKey) less(b sortKey) bool { return a.t < b.t || (a.t == b.t && a.id < b.id) }

type item struct {
	k sortKey
	e *entry
}

// chunkMax bounds a chunk of an olist: an insert or a delete moves at most
// this many items, and finding a chunk is a binary search over n/chunkMax.
const chunkMax = 256

// olist is an ordered set of items kept as a list of sorted chunks (a
// two-level B+ tree without the ceremony). Insert, remove and seek cost
// O(log n + chunkMax); walking from a key costs O(1) per item.
type olist struct {
	chunks [][]item
	n      int
}

// find returns the chunk and the index within it of the first item whose key
// is >= k; ci == len(chunks) when there is none.
func (l *olist) find(k sortKey) (ci, i int) {
	ci = sort.Search(len(l.chunks), func(j int) bool {
		c := l.chunks[j]
		return !c[len(c)-1].k.less(k)
	})
	if ci == len(l.chunks) {
		return ci, 0
	}
	c := l.chunks[ci]
	return ci, sort.Search(len(c), func(j int) bool { return !c[j].k.less(k) })
}

func (l *olist) insert(it item) {
	l.n++
	if len(l.chunks) == 0 {
		l.chunks = [][]item{{it}}
		return
	}
	ci, i := l.find(it.k)
	if ci == len(l.chunks) {
		ci = len(l.chunks) - 1
		i = len(l.chunks[ci])
	}
	c := slices.Insert(l.chunks[ci], i, it)
	if len(c) <= chunkMax {
		l.chunks[ci] = c
		return
	}
	half := len(c) / 2
	right := append(make([]item, 0, chunkMax), c[half:]...)
	clear(c[half:])
	l.chunks[ci] = c[:half]
	l.chunks = slices.Insert(l.chunks, ci+1, right)
}

func (l *olist) remove(k sortKey) bool {
	ci, i := l.find(k)
	if ci == len(l.chunks) {
		return false
	}
	c := l.chunks[ci]
	if i >= len(c) || c[i].k != k {
		return false
	}
	c = slices.Delete(c, i, i+1)
	if len(c) == 0 {
		l.chunks = slices.Delete(l.chunks, ci, ci+1)
	} else {
		l.chunks[ci] = c
	}
	l.n--
	return true
}

// walker walks an olist in one direction. The list must not change while a
// walker is in use (the index's read lock guarantees it).
type walker struct {
	l      *olist
	ci, i  int
	desc   bool
	closed bool
}

// ascAfter walks up from the first item > k (>= k when inclusive).
func (l *olist) ascAfter(k sortKey, inclusive bool) *walker {
	ci, i := l.find(k)
	w := &walker{l: l, ci: ci, i: i}
	if !inclusive {
		if it, ok := w.peek(); ok && it.k == k {
			w.next()
		}
	}
	return w
}

// ascFirst walks up from the smallest item.
func (l *olist) ascFirst() *walker { return &walker{l: l} }

// descBefore walks down from the last item < k (<= k when inclusive).
func (l *olist) descBefore(k sortKey, inclusive bool) *walker {
	ci, i := l.find(k)
	w := &walker{l: l, ci: ci, i: i, desc: true}
	if inclusive {
		if it, ok := w.at(ci, i); ok && it.k == k {
			return w
		}
	}
	w.back()
	return w
}

// descLast walks down from the largest item.
func (l *olist) descLast() *walker {
	w := &walker{l: l, ci: len(l.chunks), desc: true}
	w.back()
	return w
}

func (w *walker) at(ci, i int) (item, bool) {
	if ci < 0 || ci >= len(w.l.chunks) || i < 0 || i >= len(w.l.chunks[ci]) {
		return item{}, false
	}
	return w.l.chunks[ci][i], true
}

func (w *walker) peek() (item, bool) {
	if w.closed {
		return item{}, false
	}
	if !w.desc && w.ci < len(w.l.chunks) && w.i >= len(w.l.chunks[w.ci]) {
		w.ci, w.i = w.ci+1, 0
	}
	return w.at(w.ci, w.i)
}

func (w *walker) next() {
	if w.desc {
		w.back()
		return
	}
	w.i++
	if w.ci < len(w.l.chunks) && w.i >= len(w.l.chunks[w.ci]) {
		w.ci, w.i = w.ci+1, 0
	}
}

// back moves one item down, into the previous chunk when needed.
func (w *walker) back() {
	w.i--
	for w.i < 0 {
		w.ci--
		if w.ci < 0 {
			w.closed = true
			return
		}
		w.i = len(w.l.chunks[w.ci]) - 1
	}
}
