package handlers

import (
	"encoding/json"
	"strconv"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

func errorReply(err error) (status string, description string, body []byte) {
	code := domain.ErrorCode(err)
	msg := domain.ErrorMessage(err)
	body, _ = json.Marshal(client.ErrorBody{Error: client.ErrorDetail{Code: string(code), Message: msg}})
	return strconv.Itoa(client.StatusOf(code)), msg, body
}
