package dashboard

import (
	"fmt"
	"html/template"
	"io/fs"
	"strings"
	"time"

	"github.com/keyward/keyward"
)

// funcs are the helpers the templates use.
var funcs = template.FuncMap{
	"when": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			return v.UTC().Format("2006-01-02 15:04 UTC")
		case *time.Time:
			if v == nil {
				return ""
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		}
		return ""
	},
	"date": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format("2006-01-02")
	},
	"join":      strings.Join,
	"hasPrefix": strings.HasPrefix,
	// copyfield is what the "copyfield" template is given: a value shown
	// once in a field with a copy button.
	"copyfield": func(id, label, value string) copyField { return copyField{ID: id, Label: label, Value: value} },
	// planform is what the plan form of the console is given: the plan
	// (nil for a new one), the catalogue and the CSRF token.
	"planform": func(p *keyward.Plan, perms []*keyward.Permission, csrf string) planFormData {
		return planFormData{Plan: p, Permissions: perms, CSRF: csrf}
	},
	"list":  func(s ...string) []string { return s },
	"has":   func(list []string, s string) bool { return contains(list, s) },
	"ms":    func(us int64) string { return fmt.Sprintf("%.1f ms", float64(us)/1000) },
	"codes": func() []keyward.Code { return keyward.Codes() },
	"add":   func(a, b float64) float64 { return a + b },
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// parsePages parses every page with the layout: one template set per
// page, executed by its "layout".
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimPrefix(n, "templates/")
		if base == "layout.html" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(files, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", n, err)
		}
		pages[base] = t
	}
	return pages, nil
}

// planFormData is the console's plan form.
type planFormData struct {
	Plan        *keyward.Plan
	Permissions []*keyward.Permission
	CSRF        string
}

// copyField is a value shown once, to copy.
type copyField struct{ ID, Label, Value string }
