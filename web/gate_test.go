package web

import (
	"testing"

	"github.com/strand-dev/strand/client"
	"github.com/strand-dev/strand/domain"
)

func TestPolicyGate(t *testing.T) {
	s := client.SessionView{Status: "active", Root: "r1"}
	grant := func(group, root string, grants int) client.ApprovalView {
		v := client.ApprovalView{Reason: "commit", Group: group, Root: root, State: domain.ApprovalGrantedState}
		for range grants {
			v.Grants = append(v.Grants, client.DecisionView{Actor: "x"})
		}
		return v
	}
	cases := []struct {
		name      string
		policy    domain.Policy
		approvals []client.ApprovalView
		ok        bool
	}{
		{"NoPolicy", nil, nil, true},
		{"NeedsOneHasNone", domain.Policy{"commit": 1}, nil, false},
		{"NeedsOneHasOne", domain.Policy{"commit": 1}, []client.ApprovalView{grant("", "r1", 1)}, true},
		{"NeedsTwoHasOne", domain.Policy{"commit": 2}, []client.ApprovalView{grant("", "r1", 1)}, false},
		{"OtherRoot", domain.Policy{"commit": 1}, []client.ApprovalView{grant("", "r0", 1)}, false},
		{"PendingIsNotGranted", domain.Policy{"commit": 1}, []client.ApprovalView{{Reason: "commit", Root: "r1", State: domain.ApprovalPending}}, false},
		{"OtherAction", domain.Policy{"commit": 1}, []client.ApprovalView{{Reason: "merge", Root: "r1", State: domain.ApprovalGrantedState, Grants: []client.DecisionView{{}}}}, false},
		{"GroupsBothNeeded", domain.Policy{"commit:leads": 1, "commit:security": 1}, []client.ApprovalView{grant("leads", "r1", 1)}, false},
		{"GroupsBothGranted", domain.Policy{"commit:leads": 1, "commit:security": 1}, []client.ApprovalView{grant("leads", "r1", 1), grant("security", "r1", 1)}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := policyGate(tc.policy, "commit", tc.approvals, s)
			if g.OK != tc.ok {
				t.Fatalf("policy %v, approvals %d: got ok=%v (%s), want %v", tc.policy, len(tc.approvals), g.OK, g.Reason, tc.ok)
			}
		})
	}
	if g := policyGate(nil, "commit", nil, client.SessionView{Status: "archived"}); g.OK {
		t.Error("an archived session may be committed, want not")
	}
}
