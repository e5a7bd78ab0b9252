package domain

import (
	"errors"
	"fmt"
	"time"
)

// Code is one of the closed set of stable error codes that callers see.
type Code string

// The closed set of error codes. docs/api.md documents each; adding one is a
// change of the public contract.
const (
	CodeInvalidArgument  Code = "invalid_argument"
	CodeNotFound         Code = "not_found"
	CodeAlreadyExists    Code = "already_exists"
	CodeConflict         Code = "conflict"
	CodeLocked           Code = "locked"
	CodeApprovalRequired Code = "approval_required"
	CodeApprovalStale    Code = "approval_stale"
	CodeForbidden        Code = "forbidden"
	CodeTooLarge         Code = "too_large"
	CodeUnavailable      Code = "unavailable"
	CodeInternal         Code = "internal"
)

// Codes lists every code, in documentation order.
var Codes = []Code{
	CodeInvalidArgument, CodeNotFound, CodeAlreadyExists, CodeConflict, CodeLocked,
	CodeApprovalRequired, CodeApprovalStale, CodeForbidden, CodeTooLarge,
	CodeUnavailable, CodeInternal,
}

// Error is the one domain error type: a code and a message that is safe to
// show to the caller. Err, when set, is the cause; it is never shown.
type Error struct {
	Code    Code
	Message string
	Err     error
	// RetryAfter, when set (on unavailable), is how long the caller should
	// wait before trying again; the service sends it in the
	// Strand-Retry-After reply header, the HTTP gateway as Retry-After.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotFound) true for every *Error with that code,
// so that sentinels form a hierarchy by code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Message == "" && t.Err == nil && t.Code == e.Code
}

// Sentinels for each code. errors.Is(err, ErrNotFound) matches any not_found
// error, including the more specific sentinels below.
var (
	ErrInvalidArgument  = &Error{Code: CodeInvalidArgument}
	ErrNotFound         = &Error{Code: CodeNotFound}
	ErrAlreadyExists    = &Error{Code: CodeAlreadyExists}
	ErrConflict         = &Error{Code: CodeConflict}
	ErrLocked           = &Error{Code: CodeLocked}
	ErrApprovalRequired = &Error{Code: CodeApprovalRequired}
	ErrApprovalStale    = &Error{Code: CodeApprovalStale}
	ErrForbidden        = &Error{Code: CodeForbidden}
	ErrTooLarge         = &Error{Code: CodeTooLarge}
	ErrUnavailable      = &Error{Code: CodeUnavailable}
	ErrInternal         = &Error{Code: CodeInternal}
)

// Specific sentinels; each matches its broad class with errors.Is.
var (
	ErrSessionNotFound = &Error{Code: CodeNotFound, Message: "session not found"}
	ErrPathNotFound    = &Error{Code: CodeNotFound, Message: "path not found"}
	ErrSessionDeleted  = &Error{Code: CodeNotFound, Message: "session is deleted"}
	ErrPositionUnknown = &Error{Code: CodeNotFound, Message: "position is not in this session's history"}
)

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an internal error that keeps err as its cause. The message
// shown to callers stays generic.
func Wrap(err error, context string) error {
	if err == nil {
		return nil
	}
	var de *Error
	if errors.As(err, &de) {
		return err
	}
	return &Error{Code: CodeInternal, Message: "internal error", Err: fmt.Errorf("%s: %w", context, err)}
}

// ErrorCode returns the code of err: the code of the first *Error in its
// chain, or internal.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var de *Error
	if errors.As(err, &de) {
		return de.Code
	}
	return CodeInternal
}

// ErrorMessage returns the message of err that is safe to show to a caller.
func ErrorMessage(err error) string {
	var de *Error
	if errors.As(err, &de) {
		if de.Code == CodeInternal {
			return "internal error"
		}
		if de.Message != "" {
			return de.Message
		}
		return string(de.Code)
	}
	return "internal error"
}

// AsError is errors.As for *Error.
func AsError(err error, target **Error) bool { return errors.As(err, target) }
