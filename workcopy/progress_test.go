package workcopy

import "testing"

func TestBar(t *testing.T) {
	cases := []struct {
		n, total int64
		want     string
	}{
		{0, 10, "files [------------------------------] 0/10"},
		{5, 10, "files [###############---------------] 5/10"},
		{10, 10, "files [##############################] 10/10"},
		{12, 10, "files [##############################] 12/10"},
		{0, 0, "files [##############################] 0/0"},
	}
	for _, tc := range cases {
		if got := bar("files", tc.n, tc.total); got != tc.want {
			t.Errorf("bar(%d, %d) = %q, want %q", tc.n, tc.total, got, tc.want)
		}
	}
}
