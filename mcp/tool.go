package mcp

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/jsonschema-go/jsonschema"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

// call is one tool call: who acts, for the handlers of tools.
type call struct {
	s     *Server
	actor string
}

// mutation is the request metadata of a changing call.
func (c *call) mutation() client.Mutation { return client.Mutation{Actor: c.actor} }

// toolFunc is a tool's handler: compact text for the model and the
// structured result.
type toolFunc[In, Out any] func(ctx context.Context, c *call, in In) (string, Out, error)

// kind says what a tool does to the session, for its annotations.
type kind int

const (
	readOnly    kind = iota // changes nothing
	additive                // adds (a checkpoint, a note, a directory)
	destructive             // may replace or remove what is there (history keeps it)
)

// beyondPin are the arguments that reach past a pinned session: the
// session itself, and run_command's fork (a new session).
var beyondPin = []string{"session", "fork"}

// add registers a tool. A pinned server drops the session property from
// the input schema, so that no call can name another session.
func add[In, Out any](s *Server, name, title, desc string, k kind, idempotent bool, h toolFunc[In, Out]) {
	schema, err := jsonschema.For[In](nil)
	if err != nil {
		panic(fmt.Sprintf("mcp: schema of %s: %v", name, err)) // a programming error
	}
	if s.opts.Session != "" {
		for _, p := range beyondPin {
			delete(schema.Properties, p)
		}
		schema.Required = slices.DeleteFunc(schema.Required, func(p string) bool { return slices.Contains(beyondPin, p) })
	}
	yes, no := true, false
	ann := &sdk.ToolAnnotations{Title: title, ReadOnlyHint: k == readOnly, IdempotentHint: idempotent, OpenWorldHint: &no}
	switch k {
	case destructive:
		ann.DestructiveHint = &yes
	case additive:
		ann.DestructiveHint = &no
	case readOnly:
	}
	t := &sdk.Tool{Name: name, Title: title, Description: desc, InputSchema: schema, Annotations: ann}
	sdk.AddTool(s.sdk, t, func(ctx context.Context, req *sdk.CallToolRequest, in In) (*sdk.CallToolResult, Out, error) {
		text, out, err := h(ctx, &call{s: s, actor: s.actor(req)}, in)
		if err != nil {
			var zero Out
			return nil, zero, toolError(err)
		}
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: text}}}, out, nil
	})
}

// nextSteps tells a model what to do after each error code.
var nextSteps = map[domain.Code]string{
	domain.CodeInvalidArgument:  "fix the argument the message names and call again.",
	domain.CodeNotFound:         "check the id, path or name (list_files, session_list, checkpoint_list) and call again.",
	domain.CodeAlreadyExists:    "pick another name, or use the one that exists.",
	domain.CodeConflict:         "it changed since you read it: read it again (read_file gives the current hash) and redo your change on the current content.",
	domain.CodeLocked:           "another actor holds a lock on this path: wait and retry, or pass your own lock's token.",
	domain.CodeApprovalRequired: "ask a reviewer with review_request, then call again once review_status shows the request granted.",
	domain.CodeApprovalStale:    "the content changed after the approval: request a new one (review_request) for the current content.",
	domain.CodeForbidden:        "this server or actor may not do this; do not retry, tell the user.",
	domain.CodeTooLarge:         "ask for less: a line range, a narrower prefix or glob, a smaller limit, or smaller content.",
	domain.CodeUnavailable:      "the Strand service did not answer: retry shortly.",
	domain.CodeInternal:         "the service failed; retry once, then tell the user.",
}

// ToolError is the error of a failed tool call: a stable code from the
// closed set of docs/api.md, the service's message and the next step.
type ToolError struct {
	Code    domain.Code
	Message string
	Next    string
}

func (e *ToolError) Error() string {
	return fmt.Sprintf("%s: %s\nNext: %s", e.Code, e.Message, e.Next)
}

// toolError turns any error of a tool into a ToolError.
func toolError(err error) error {
	var te *ToolError
	if errors.As(err, &te) {
		return te
	}
	var he *client.Error
	code, msg := domain.CodeUnavailable, err.Error()
	switch {
	case errors.As(err, &he):
		code, msg = he.Code, he.Message
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		msg = "the request was cancelled or timed out"
	}
	next, ok := nextSteps[code]
	if !ok {
		next = nextSteps[domain.CodeInternal]
	}
	return &ToolError{Code: code, Message: msg, Next: next}
}

// invalid is an invalid_argument error of the tool itself.
func invalid(format string, args ...any) error {
	return &client.Error{Code: domain.CodeInvalidArgument, Message: fmt.Sprintf(format, args...)}
}
