package domain_test

import (
	"strings"
	"testing"

	"github.com/strand-dev/strand/domain"
)

func TestCleanPath(t *testing.T) {
	maxComponent := strings.Repeat("x", domain.MaxComponentBytes)
	deepest := strings.TrimSuffix(strings.Repeat("d/", domain.MaxPathDepth), "/")
	// MaxPathDepth components whose total is exactly MaxPathBytes.
	longest := strings.Repeat(strings.Repeat("y", 63)+"/", domain.MaxPathDepth)
	longest = longest[:domain.MaxPathBytes-1] + "z"

	good := []struct {
		in, want string
	}{
		{"", ""},
		{"/", ""},
		{".", ""},
		{"//./", ""},
		{"a", "a"},
		{"/a", "a"},
		{"a/", "a"},
		{"/a//b/./c", "a/b/c"},
		{"./a/./b/.", "a/b"},
		{"a/.../b", "a/.../b"},
		{"..a/b..", "..a/b.."},
		{".hidden", ".hidden"},
		{"with space/tab-less", "with space/tab-less"},
		{"é/日本語/🙂", "é/日本語/🙂"},
		{"a\u0080b", "a\u0080b"}, // C1 controls are valid UTF-8 and allowed
		{maxComponent, maxComponent},
		{deepest, deepest},
		{"/" + deepest + "/", deepest},
		{longest, longest},
	}
	for _, tc := range good {
		got, err := domain.CleanPath(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("CleanPath(%.60q) = %.60q, %v; want %.60q, nil", tc.in, got, err, tc.want)
			continue
		}
		// Clean is idempotent.
		if again, err := domain.CleanPath(got); err != nil || again != got {
			t.Errorf("CleanPath(CleanPath(%.60q)) = %.60q, %v; want %.60q, nil", tc.in, again, err, got)
		}
	}

	bad := []struct {
		name, in string
	}{
		{"DotDot", ".."},
		{"LeadingDotDot", "../a"},
		{"InnerDotDot", "a/../b"},
		{"TrailingDotDot", "a/b/.."},
		{"RootedDotDot", "/.."},
		{"NUL", "a\x00b"},
		{"InvalidUTF8", "a/\xff\xfe"},
		{"TruncatedUTF8", "caf\xc3"},
		{"Newline", "a\nb"},
		{"Tab", "a\tb"},
		{"Escape", "a/\x1b[0m"},
		{"Delete", "a\x7f"},
		{"Backslash", `a\b`},
		{"BackslashDotDot", `..\x`},
		{"ComponentTooLong", "a/" + maxComponent + "x"},
		{"PathTooLong", strings.Repeat(maxComponent+"/", 16) + "b"},
		{"PathOneByteTooLong", longest + "w"},
		{"PathTooLongBySlashes", "a" + strings.Repeat("/", domain.MaxPathBytes)},
		{"TooDeep", deepest + "/e"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			got, err := domain.CleanPath(tc.in)
			if code := domain.ErrorCode(err); code != domain.CodeInvalidArgument {
				t.Fatalf("CleanPath(%.60q) = %.60q, %v (code %q); want code %q", tc.in, got, err, code, domain.CodeInvalidArgument)
			}
			if got != "" {
				t.Errorf("CleanPath(%.60q) returned %.60q with an error, want \"\"", tc.in, got)
			}
			if msg := domain.ErrorMessage(err); msg == "" || msg == "internal error" {
				t.Errorf("CleanPath(%.60q): message %q is not a useful one", tc.in, msg)
			}
		})
	}
}

func TestCleanNonRoot(t *testing.T) {
	for _, in := range []string{"", "/", ".", "/./"} {
		if _, err := domain.CleanNonRoot(in); domain.ErrorCode(err) != domain.CodeInvalidArgument {
			t.Errorf("CleanNonRoot(%q): got %v, want invalid_argument", in, err)
		}
	}
	if got, err := domain.CleanNonRoot("/a/./b/"); err != nil || got != "a/b" {
		t.Errorf("CleanNonRoot(%q) = %q, %v; want %q, nil", "/a/./b/", got, err, "a/b")
	}
	if _, err := domain.CleanNonRoot("a/../b"); domain.ErrorCode(err) != domain.CodeInvalidArgument {
		t.Errorf("CleanNonRoot(%q): got %v, want invalid_argument", "a/../b", err)
	}
}

func TestComparePaths(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "a", -1},
		{"a", "a", 0},
		{"a", "b", -1},
		{"a", "a/b", -1},
		{"a/b", "a.txt", -1}, // bytewise "a/b" > "a.txt", but a's children come before a.txt
		{"a/z/z", "a.txt", -1},
		{"a-b", "a/b", 1},
		{"a/b/c", "a/b", 1},
		{"B", "a", -1},
		{"a/b", "a/c", -1},
	}
	for _, tc := range tests {
		if got := domain.ComparePaths(tc.a, tc.b); got != tc.want {
			t.Errorf("ComparePaths(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := domain.ComparePaths(tc.b, tc.a); got != -tc.want {
			t.Errorf("ComparePaths(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}
