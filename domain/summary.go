package domain

// Summary describes what a session changed against its base: computed
// deterministically from the diff, so the same two trees always give the
// same summary.
type Summary struct {
	Added        int        `msgpack:"a" json:"added"`
	Modified     int        `msgpack:"m" json:"modified"`
	Deleted      int        `msgpack:"d" json:"deleted"`
	Renamed      int        `msgpack:"r" json:"renamed"`
	LinesAdded   int        `msgpack:"la" json:"lines_added"`
	LinesRemoved int        `msgpack:"lr" json:"lines_removed"`
	SizeDelta    int64      `msgpack:"sd" json:"size_delta"`
	TopDirs      []DirTouch `msgpack:"dirs,omitempty" json:"top_dirs"`
	// BinaryFiles counts changed files whose lines were not counted.
	BinaryFiles int `msgpack:"bin,omitempty" json:"binary_files"`
}

// DirTouch counts the changed paths under a top-level directory ("" for
// files at the root).
type DirTouch struct {
	Dir     string `msgpack:"dir" json:"dir"`
	Changes int    `msgpack:"n" json:"changes"`
}
