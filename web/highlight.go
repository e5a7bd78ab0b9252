package web

import (
	"bytes"
	"html/template"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/alecthomas/chroma/v2"
	chromahtml "github.com/alecthomas/chroma/v2/formatters/html"
	"github.com/alecthomas/chroma/v2/lexers"
	"github.com/alecthomas/chroma/v2/styles"
)

// highlightStyle is the chroma style of file views and diffs.
const highlightStyle = "github"

// highlightLines returns the lines of text as HTML with syntax classes,
// the lexer chosen by the file name (then by the content). Lines are
// tokenised together, so a construct that spans lines (a comment, a raw
// string) is coloured right; the classes are chroma's short names.
func highlightLines(name, text string) []template.HTML {
	lexer := lexers.Match(name)
	if lexer == nil {
		lexer = lexers.Analyse(text)
	}
	if lexer == nil {
		lexer = lexers.Fallback
	}
	lexer = chroma.Coalesce(lexer)
	it, err := lexer.Tokenise(nil, text)
	if err != nil {
		return plainLines(text)
	}
	var out []template.HTML
	for _, line := range chroma.SplitTokensIntoLines(it.Tokens()) {
		var b strings.Builder
		for _, tok := range line {
			v := strings.TrimRight(tok.Value, "\n")
			if v == "" {
				continue
			}
			cls := chroma.StandardTypes[tok.Type]
			if cls == "" {
				cls = chroma.StandardTypes[tok.Type.SubCategory()]
			}
			if cls == "" {
				cls = chroma.StandardTypes[tok.Type.Category()]
			}
			if cls == "" {
				b.WriteString(template.HTMLEscapeString(v))
				continue
			}
			b.WriteString(`<span class="` + cls + `">` + template.HTMLEscapeString(v) + `</span>`)
		}
		out = append(out, template.HTML(b.String())) //nolint:gosec // every piece of content is escaped above
	}
	// A text that ends with a newline has no line after it.
	want := strings.Count(text, "\n")
	if !strings.HasSuffix(text, "\n") {
		want++
	}
	for len(out) < want {
		out = append(out, "")
	}
	return out[:want]
}

func plainLines(text string) []template.HTML {
	text = strings.TrimSuffix(text, "\n")
	var out []template.HTML
	for _, l := range strings.Split(text, "\n") {
		out = append(out, template.HTML(template.HTMLEscapeString(l))) //nolint:gosec // escaped
	}
	return out
}

// isBinary is the test the unified diff makes: a NUL byte in the first
// 8000 bytes, or content that is not UTF-8.
func isBinary(data []byte) bool {
	head := data[:min(len(data), 8000)]
	return bytes.IndexByte(head, 0) >= 0 || !utf8.Valid(data)
}

var (
	cssOnce sync.Once
	cssText []byte
)

// highlightCSS serves the style sheet of the syntax classes, made once
// from the chroma style.
func highlightCSS(w http.ResponseWriter, r *http.Request) {
	cssOnce.Do(func() {
		var b bytes.Buffer
		f := chromahtml.New(chromahtml.WithClasses(true))
		if err := f.WriteCSS(&b, styles.Get(highlightStyle)); err != nil {
			b.Reset()
		}
		cssText = b.Bytes()
	})
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(cssText)
}
