package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/view"
)

// printJSON writes v to stdout as one indented JSON value. It encodes v
// whole before it writes anything: a value that cannot be encoded (a
// stored time after the year 9999) is an error, never empty or partial
// output.
func (a *app) printJSON(v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("--json: the output cannot be encoded as JSON, so none is printed: %w", err)
	}
	_, err := a.stdout.Write(buf.Bytes())
	return err
}

// printList writes one page of a list and the cursor of the next to a's
// stdout, as the HTTP API's list answers show it (view.List).
func printList[T any](a *app, data []T, next string) error {
	return a.printJSON(view.ListOf(data, next))
}

// printNext tells, on stderr, how to ask for the next page of a list.
func (a *app) printNext(cmdPath, next string) {
	if next != "" {
		fmt.Fprintf(a.stderr, "More results: %s --cursor %s\n", cmdPath, shown(next))
	}
}

// printPage prints one page of a list: as JSON with --json, else as a
// table of header and a row per item, and how to ask for the next page.
func printPage[T any](a *app, cmdPath string, data []T, next, header string, cols func(T) []string) error {
	if a.json {
		return printList(a, data, next)
	}
	tw := table(a.stdout)
	fmt.Fprintln(tw, header)
	for _, item := range data {
		row(tw, cols(item)...)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	a.printNext(cmdPath, next)
	return nil
}

// table returns a writer that lines up tab-separated columns on w; the
// caller flushes it.
func table(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// row writes one line of a table: the columns, each as shown, separated
// by tabs.
func row(w io.Writer, cols ...string) {
	for i, c := range cols {
		cols[i] = shown(c)
	}
	fmt.Fprintln(w, strings.Join(cols, "\t"))
}

// fields writes name-value pairs, one a line, with the values lined up and
// each as shown.
func fields(w io.Writer, pairs ...string) error {
	tw := table(w)
	for i := 0; i+1 < len(pairs); i += 2 {
		fmt.Fprintf(tw, "%s:\t%s\n", pairs[i], shown(pairs[i+1]))
	}
	return tw.Flush()
}

// shown returns text from the database, or typed by someone, fit to print
// on a terminal: s itself when every character of it is visible, and
// otherwise s quoted as Go quotes a string (strconv.Quote), which writes
// each control character (ESC and C1 included), invisible formatting
// character (bidirectional and zero-width ones included), separator other
// than the space, and byte of invalid UTF-8 as an escape such as \x1b or
// \u202e. Stored text never drives the operator's terminal, nor hides what
// it holds; and shown(shown(s)) is shown(s).
func shown(s string) string {
	if visible(s) {
		return s
	}
	return strconv.Quote(s)
}

// escaped returns a message with every character that shown would escape
// written as its escape, in place and without quotes, since a message is
// a sentence; line breaks stay.
func escaped(msg string) string {
	if visible(strings.ReplaceAll(msg, "\n", "")) {
		return msg
	}
	var b strings.Builder
	for i := 0; i < len(msg); {
		r, size := utf8.DecodeRuneInString(msg[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, msg[i])
		case r == '\n' || strconv.IsPrint(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

// visible reports whether s is valid UTF-8 made only of characters that
// strconv.Quote leaves as they are: letters, marks, numbers, punctuation,
// symbols and the ASCII space.
func visible(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return false
		}
	}
	return true
}

// when formats a time for a person: UTC, to the second.
func when(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

// whenOr formats an optional time, or returns none when it is nil.
func whenOr(t *time.Time, none string) string {
	if t == nil || t.IsZero() {
		return none
	}
	return when(*t)
}

// orDash returns s, or "-" when it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// displayKey is how a key is shown everywhere but in the one line that
// reveals it: its start and last four characters, such as sk_live_3Fj9…x7Qa.
func displayKey(k *keyward.Key) string {
	return shown(k.Start) + "…" + shown(k.Last4)
}

// joinMap writes a string map as k=v pairs in key order, each side as
// shown, or "-".
func joinMap(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = shown(k) + "=" + shown(m[k])
	}
	return strings.Join(keys, ", ")
}

// joinList writes a list separated by commas, each item as shown, or none
// when it is empty.
func joinList(l []string, none string) string {
	if len(l) == 0 {
		return none
	}
	items := make([]string, len(l))
	for i, s := range l {
		items[i] = shown(s)
	}
	return strings.Join(items, ", ")
}
