package dashboard

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/verifyapi"
	"github.com/keyward/keyward/manage"
)

func (d *Dashboard) memberRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /members", d.member(d.membersPage))
	mux.HandleFunc("POST /members", d.member(d.addMember))
	mux.HandleFunc("POST /members/{id}", d.member(d.changeMember))
	mux.HandleFunc("POST /members/{id}/invite", d.member(d.inviteMember))
	mux.HandleFunc("GET /members/{id}/remove", d.member(d.removeMemberPage))
	mux.HandleFunc("POST /members/{id}/remove", d.member(d.removeMember))
	mux.HandleFunc("GET /invitations/{token}", d.checked(d.invitationPage))
	mux.HandleFunc("POST /invitations/{token}", d.checked(d.acceptInvitation))
	mux.HandleFunc("GET /portal/{token}", d.portal)
}

// memberRow is a member as the list shows it, with what the caller may do.
type memberRow struct {
	*keyward.Member
	MayChange bool
}

type membersData struct {
	Members []memberRow
	Tenant  string
	NextURL string
	MayAdd  bool
	Roles   []keyward.Role
	Offered []string
	Add     memberForm
	Link    *manage.Link
	LinkFor string
}

// memberForm is the add form as it was sent.
type memberForm struct {
	Email, Name, Role string
	Permissions       []string
}

// membersPage lists the members of the tenant (of a tenant the operator
// names), with their roles and permissions.
func (d *Dashboard) membersPage(w http.ResponseWriter, r *http.Request, s *signedIn) {
	d.renderMembers(w, r, s, http.StatusOK, membersData{Add: memberForm{Role: string(keyward.RoleDeveloper)}}, nil)
}

func (d *Dashboard) renderMembers(w http.ResponseWriter, r *http.Request, s *signedIn, status int, data membersData, formErr *keyward.Error) {
	q := r.URL.Query()
	if data.Tenant == "" {
		data.Tenant = q.Get("tenant")
	}
	ms, next, err := d.svc.Members(r.Context(), s.caller, data.Tenant, keyward.Page{Cursor: q.Get("cursor"), Limit: keyward.MaxPageLimit})
	if err != nil {
		d.fail(w, r, err)
		return
	}
	for _, m := range ms {
		data.Members = append(data.Members, memberRow{Member: m, MayChange: manage.MayChangeMember(s.caller, m)})
	}
	data.NextURL = nextPage("/members", q, next)
	data.MayAdd = manage.MayAddMembers(s.caller) && (data.Tenant != "" || !s.caller.Root())
	data.Roles = keyward.Roles()
	data.Offered = slices.DeleteFunc(d.offeredPermissions(r, s), keyward.BuiltIn)
	d.render(w, r, status, "members.html", s, pageView{Title: "Members", Nav: "members", Error: formErr, Data: data})
}

// addMember adds a member and makes its invitation link, shown once.
func (d *Dashboard) addMember(w http.ResponseWriter, r *http.Request, s *signedIn) {
	form := memberForm{Email: r.PostFormValue("email"), Name: r.PostFormValue("name"), Role: r.PostFormValue("role"), Permissions: r.PostForm["permissions"]}
	tenant := r.PostFormValue("tenant")
	m, err := d.svc.CreateMember(r.Context(), s.caller, manage.CreateMemberInput{TenantID: tenant, Email: form.Email, Name: form.Name, Role: form.Role, Permissions: form.Permissions})
	if err != nil {
		d.memberFormError(w, r, s, membersData{Tenant: tenant, Add: form}, err)
		return
	}
	link, err := d.svc.InviteMember(r.Context(), s.caller, m.ID, d.base(r))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.renderMembers(w, r, s, http.StatusCreated, membersData{Tenant: tenant, Add: memberForm{Role: string(keyward.RoleDeveloper)}, Link: link, LinkFor: m.Email}, nil)
}

func (d *Dashboard) memberFormError(w http.ResponseWriter, r *http.Request, s *signedIn, data membersData, err error) {
	e := verifyapi.AsError(err)
	if e.Code.Status() >= 500 || e.Code == keyward.CodeNotFound {
		d.fail(w, r, err)
		return
	}
	d.renderMembers(w, r, s, e.Code.Status(), data, e)
}

// changeMember changes a member's role, permissions or status.
func (d *Dashboard) changeMember(w http.ResponseWriter, r *http.Request, s *signedIn) {
	role, status := r.PostFormValue("role"), r.PostFormValue("status")
	perms := r.PostForm["permissions"]
	if perms == nil {
		perms = []string{}
	}
	m, err := d.svc.UpdateMember(r.Context(), s.caller, r.PathValue("id"), manage.UpdateMemberInput{Role: &role, Status: &status, Permissions: &perms})
	if err != nil {
		d.memberFormError(w, r, s, membersData{Tenant: r.PostFormValue("tenant"), Add: memberForm{Role: string(keyward.RoleDeveloper)}}, err)
		return
	}
	d.done(w, r, nil, fmt.Sprintf("%s is now %s, %s.", m.Email, m.Role, m.Status), d.membersURL(r))
}

func (d *Dashboard) membersURL(r *http.Request) string {
	if t := r.PostFormValue("tenant"); t != "" {
		return "/members?tenant=" + t
	}
	return "/members"
}

// inviteMember makes a new invitation link for a member, shown once.
func (d *Dashboard) inviteMember(w http.ResponseWriter, r *http.Request, s *signedIn) {
	link, err := d.svc.InviteMember(r.Context(), s.caller, r.PathValue("id"), d.base(r))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	m, err := d.svc.Member(r.Context(), s.caller, link.MemberID)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.renderMembers(w, r, s, http.StatusCreated, membersData{Tenant: r.PostFormValue("tenant"), Add: memberForm{Role: string(keyward.RoleDeveloper)}, Link: link, LinkFor: m.Email}, nil)
}

func (d *Dashboard) removeMemberPage(w http.ResponseWriter, r *http.Request, s *signedIn) {
	m, err := d.svc.Member(r.Context(), s.caller, r.PathValue("id"))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "member-remove.html", s, pageView{Title: "Remove " + m.Email, Nav: "members", Data: m})
}

func (d *Dashboard) removeMember(w http.ResponseWriter, r *http.Request, s *signedIn) {
	rm, err := d.svc.RemoveMember(r.Context(), s.caller, r.PathValue("id"), "")
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.done(w, r, nil, fmt.Sprintf("%s was removed, and %d of their keys revoked.", rm.Member.Email, rm.Revoked), "/members")
}

// base is the public URL of the dashboard, for the links it makes: the
// configured one, else the request's own scheme and host.
func (d *Dashboard) base(r *http.Request) string {
	if d.publicURL != "" {
		return d.publicURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

type invitationData struct {
	Member *keyward.Member
	Token  string
}

// invitationPage asks the invited member for a password. Opening it uses
// nothing.
func (d *Dashboard) invitationPage(w http.ResponseWriter, r *http.Request) {
	m, err := d.svc.Invitation(r.Context(), r.PathValue("token"))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	d.render(w, r, http.StatusOK, "invitation.html", nil, pageView{Title: "Set your password", Data: invitationData{Member: m, Token: r.PathValue("token")}})
}

// acceptInvitation sets the password, uses the invitation and signs in.
func (d *Dashboard) acceptInvitation(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	pw := r.PostFormValue("password")
	if pw != r.PostFormValue("confirm") {
		m, err := d.svc.Invitation(r.Context(), token)
		if err != nil {
			d.fail(w, r, err)
			return
		}
		d.render(w, r, http.StatusBadRequest, "invitation.html", nil, pageView{Title: "Set your password",
			Error: keyward.FieldErrorf("confirm", "the two passwords differ; type the same one twice"), Data: invitationData{Member: m, Token: token}})
		return
	}
	cred, err := d.svc.AcceptInvitation(r.Context(), token, pw)
	if err != nil {
		e := verifyapi.AsError(err)
		m, merr := d.svc.Invitation(r.Context(), token)
		if e.Field != "password" || merr != nil {
			d.fail(w, r, err)
			return
		}
		d.render(w, r, e.Code.Status(), "invitation.html", nil, pageView{Title: "Set your password", Error: e, Data: invitationData{Member: m, Token: token}})
		return
	}
	if !d.start(w, r, cred, "") {
		return
	}
	d.sessions.Put(r.Context(), sessFlash, "Your password is set, and you are signed in.")
	http.Redirect(w, r, "/keys", http.StatusSeeOther)
}

// portal signs a provider's customer in with a one-time portal link.
func (d *Dashboard) portal(w http.ResponseWriter, r *http.Request) {
	cred, back, err := d.svc.UsePortalLink(r.Context(), r.PathValue("token"))
	if err != nil {
		d.fail(w, r, err)
		return
	}
	if d.start(w, r, cred, back) {
		http.Redirect(w, r, "/keys", http.StatusSeeOther)
	}
}
