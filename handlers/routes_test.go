package handlers

import (
	"testing"

	"github.com/strand-dev/strand/client"
)

// TestRoutes_EveryRowHasAHandler fails for a row of the endpoint table that
// handlers/routes.go does not bind, and for a binding of an endpoint that
// is not in the table.
func TestRoutes_EveryRowHasAHandler(t *testing.T) {
	routes := (&Service{}).routes()
	inTable := map[*client.Endpoint]bool{}
	for _, ep := range client.Endpoints {
		inTable[ep] = true
		if routes[ep] == nil {
			t.Errorf("endpoint %s: no handler in routes (handlers/routes.go)", ep.Path())
		}
	}
	for ep := range routes {
		if !inTable[ep] {
			t.Errorf("routes binds %s, which is not a row of client.Endpoints", ep.Path())
		}
	}
}
