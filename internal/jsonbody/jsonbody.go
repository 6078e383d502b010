// Package jsonbody reads a request's JSON body strictly, for every HTTP
// front of the API: unknown fields, trailing data or a wrong type are
// errors that say what to fix.
package jsonbody

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/keyward/keyward"
)

// Decode decodes body, read whole by the front, into v strictly: a body
// that is not valid UTF-8, not JSON, empty (ErrEmpty), cut short
// (ErrCutShort), more than one value, or a value with an unknown field or
// a field of the wrong type is an error that says what to fix.
func Decode(body []byte, v any) error {
	// encoding/json would read invalid UTF-8 in a string as U+FFFD without
	// a word, and store text that is not what was sent.
	if i := invalidUTF8(body); i >= 0 {
		return keyward.Errorf(keyward.CodeInvalidRequest, "The body is not valid UTF-8 (byte 0x%02X at byte %d); send JSON encoded as UTF-8.", body[i], i+1)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if !dec.More() {
			err = dec.Decode(&struct{}{})
			if err == io.EOF {
				return nil
			}
		}
		return keyward.Errorf(keyward.CodeInvalidRequest, "The body holds more than one JSON value; send a single JSON object.")
	}
	var (
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.EOF):
		return ErrEmpty
	case errors.Is(err, io.ErrUnexpectedEOF):
		return ErrCutShort
	case errors.As(err, &syntax):
		return keyward.Errorf(keyward.CodeInvalidRequest, "The body is not valid JSON (%v); send a JSON object.", err)
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return keyward.Errorf(keyward.CodeInvalidRequest, "The body must be a JSON object, not %s.", typeErr.Value)
		}
		return keyward.FieldErrorf(typeErr.Field, "must be %s, not %s", jsonType(typeErr.Type.Kind().String()), typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return keyward.FieldErrorf(field, "is not a field of this request; check its spelling against /openapi.json")
	}
	return &keyward.Error{Code: keyward.CodeInvalidRequest, Err: err,
		Message: "The body could not be read as JSON; send a single JSON object."}
}

// invalidUTF8 returns the index of the first byte of b that does not start
// a valid UTF-8 sequence, or -1 when b is valid UTF-8.
func invalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return -1
}

// ErrCutShort is Decode's answer to a body that ends before its JSON value
// does, or before its Content-Length says.
var ErrCutShort = keyward.Errorf(keyward.CodeInvalidRequest, "The body is not valid JSON: it ends before its JSON value does (cut short, or shorter than its Content-Length says); send a whole JSON object.")

// ErrEmpty is Decode's answer to a request without a body.
var ErrEmpty = keyward.Errorf(keyward.CodeInvalidRequest, "The body is empty; send a JSON object.")

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	case "bool":
		return "true or false"
	}
	return "a number"
}
