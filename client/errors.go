package client

import (
	"errors"
	"fmt"
	"time"

	"github.com/strand-dev/strand/domain"
)

// ErrorBody is the JSON body of every failed request.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the code and message of a failed request.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// statusOf is the one table that maps error codes to the numeric code of
// the micro error header (Nats-Service-Error-Code) and to HTTP statuses.
// The numbers follow HTTP so that generic tools show something familiar.
var statusOf = map[domain.Code]int{
	domain.CodeInvalidArgument:  400,
	domain.CodeNotFound:         404,
	domain.CodeAlreadyExists:    409,
	domain.CodeConflict:         409,
	domain.CodeLocked:           423,
	domain.CodeApprovalRequired: 428,
	domain.CodeApprovalStale:    428,
	domain.CodeForbidden:        403,
	domain.CodeTooLarge:         413,
	domain.CodeUnavailable:      503,
	domain.CodeInternal:         500,
}

// StatusOf returns the HTTP-like status of an error code, from the one
// table above (500 for a code it does not know).
func StatusOf(code domain.Code) int {
	if n, ok := statusOf[code]; ok {
		return n
	}
	return 500
}

// Error is a failed request as the client sees it.
type Error struct {
	Code    domain.Code
	Message string
	// RetryAfter is the service's hint (names.HeaderRetryAfter) of when to
	// try again an unavailable request; 0 when it gave none.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Is lets errors.Is(err, domain.ErrNotFound) work on client errors too.
func (e *Error) Is(target error) bool {
	var de *domain.Error
	if errors.As(target, &de) {
		return de.Code == e.Code && de.Message == ""
	}
	return false
}

// ErrorCode returns the stable code of an error returned by the client or
// by the domain.
func ErrorCode(err error) domain.Code {
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Code
	}
	return domain.ErrorCode(err)
}

// ErrorMessage returns the message of an error returned by the client or by
// the domain that is safe to show: the service's message for a failed
// request, the domain's for a local check, and the error's text otherwise.
func ErrorMessage(err error) string {
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Message
	}
	var de *domain.Error
	if errors.As(err, &de) {
		return domain.ErrorMessage(err)
	}
	return err.Error()
}
