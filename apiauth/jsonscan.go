package apiauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// This file holds a small strict JSON reader used for the JOSE header and the
// claims. encoding/json is lenient where a token validator must not be: it
// accepts duplicate object members (last one wins, so two parsers can disagree
// on the same token), invalid UTF-8 and 10 000 levels of nesting. Reading the
// few members we need directly is also several times cheaper than reflection.

// maxJSONDepth bounds nesting in headers and claims. Entra tokens nest at most
// two levels (an object holding arrays of strings).
const maxJSONDepth = 8

var errJSON = errors.New("malformed JSON")

// value kinds reported by the scanner
const (
	kindString = 's'
	kindNumber = 'n'
	kindObject = 'o'
	kindArray  = 'a'
	kindTrue   = 't'
	kindFalse  = 'f'
	kindNull   = 'z'
)

type jsonScanner struct {
	b []byte
	i int
}

// member is called for each top-level member: key is the raw key (without
// quotes; keyEsc tells whether it contains escapes), val the raw value bytes.
type memberFunc func(key []byte, keyEsc bool, val []byte, kind byte) error

// parseObject strictly parses b, which must be exactly one JSON object with
// optional surrounding whitespace, and calls fn for each top-level member.
func parseObject(b []byte, fn memberFunc) error {
	s := jsonScanner{b: b}
	s.ws()
	if s.i >= len(b) || b[s.i] != '{' {
		return errJSON
	}
	if err := s.object(1, fn); err != nil {
		return err
	}
	s.ws()
	if s.i != len(b) {
		return errJSON // trailing data
	}
	return nil
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

type keyRef struct {
	k   []byte
	esc bool
}

// object parses an object starting at s.b[s.i] == '{'.
func (s *jsonScanner) object(depth int, fn memberFunc) error {
	if depth > maxJSONDepth {
		return errJSON
	}
	s.i++ // '{'
	var seenArr [32]keyRef
	seen := seenArr[:0]
	var seenMap map[string]struct{}
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return errJSON
		}
		ks, ke, kesc, err := s.str()
		if err != nil {
			return err
		}
		key := s.b[ks:ke]
		if seenMap == nil {
			for _, p := range seen {
				if sameKey(p, keyRef{key, kesc}) {
					return errors.New("duplicate JSON member " + strconv.Quote(truncate(string(key), 32)))
				}
			}
			seen = append(seen, keyRef{key, kesc})
			if len(seen) == len(seenArr) {
				// Many members: switch to a set so that duplicate detection
				// stays linear (a 16 KiB object can hold thousands).
				seenMap = make(map[string]struct{}, 2*len(seen))
				for _, p := range seen {
					seenMap[unescape(p.k, p.esc)] = struct{}{}
				}
			}
		} else {
			k := unescape(key, kesc)
			if _, dup := seenMap[k]; dup {
				return errors.New("duplicate JSON member " + strconv.Quote(truncate(k, 32)))
			}
			seenMap[k] = struct{}{}
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return errJSON
		}
		s.i++
		s.ws()
		vs := s.i
		kind, err := s.value(depth)
		if err != nil {
			return err
		}
		if fn != nil {
			if err := fn(key, kesc, s.b[vs:s.i], kind); err != nil {
				return err
			}
		}
		s.ws()
		if s.i >= len(s.b) {
			return errJSON
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return errJSON
		}
	}
}

func sameKey(a, b keyRef) bool {
	if !a.esc && !b.esc {
		return bytes.Equal(a.k, b.k)
	}
	return unescape(a.k, a.esc) == unescape(b.k, b.esc)
}

func (s *jsonScanner) array(depth int) error {
	if depth > maxJSONDepth {
		return errJSON
	}
	s.i++ // '['
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return nil
	}
	for {
		s.ws()
		if _, err := s.value(depth); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.b) {
			return errJSON
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return errJSON
		}
	}
}

// value parses any value at s.i and reports its kind.
func (s *jsonScanner) value(depth int) (byte, error) {
	if s.i >= len(s.b) {
		return 0, errJSON
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, _, _, err := s.str()
		return kindString, err
	case c == '{':
		return kindObject, s.object(depth+1, nil)
	case c == '[':
		return kindArray, s.array(depth + 1)
	case c == '-' || (c >= '0' && c <= '9'):
		return kindNumber, s.number()
	case c == 't':
		return kindTrue, s.lit("true")
	case c == 'f':
		return kindFalse, s.lit("false")
	case c == 'n':
		return kindNull, s.lit("null")
	}
	return 0, errJSON
}

func (s *jsonScanner) lit(l string) error {
	if len(s.b)-s.i < len(l) || string(s.b[s.i:s.i+len(l)]) != l {
		return errJSON
	}
	s.i += len(l)
	return nil
}

// number checks the RFC 8259 number grammar.
func (s *jsonScanner) number() error {
	b, i := s.b, s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return errJSON
	}
	if i < len(b) && b[i] == '.' {
		i++
		st := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == st {
			return errJSON
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		st := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == st {
			return errJSON
		}
	}
	s.i = i
	return nil
}

// str parses a string at s.i (which is '"') and returns the content bounds.
func (s *jsonScanner) str() (start, end int, esc bool, err error) {
	b := s.b
	i := s.i + 1
	start = i
	hi := false
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			if hi && !utf8.Valid(b[start:i]) {
				return 0, 0, false, errJSON
			}
			s.i = i + 1
			return start, i, esc, nil
		case c == '\\':
			esc = true
			i++
			if i >= len(b) {
				return 0, 0, false, errJSON
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if len(b)-i < 5 {
					return 0, 0, false, errJSON
				}
				for _, h := range b[i+1 : i+5] {
					if !isHex(h) {
						return 0, 0, false, errJSON
					}
				}
				i += 5
			default:
				return 0, 0, false, errJSON
			}
		case c < 0x20:
			return 0, 0, false, errJSON
		default:
			if c >= 0x80 {
				hi = true
			}
			i++
		}
	}
	return 0, 0, false, errJSON
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// unescape returns the Go string for already-validated string content.
func unescape(raw []byte, esc bool) string {
	if !esc {
		return string(raw)
	}
	q := make([]byte, 0, len(raw)+2)
	q = append(q, '"')
	q = append(q, raw...)
	q = append(q, '"')
	var out string
	if json.Unmarshal(q, &out) != nil {
		return "\x00invalid" // cannot happen for validated content
	}
	return out
}

// stringValue returns the value of a string member.
func stringValue(val []byte, kind byte) (string, bool) {
	if kind != kindString {
		return "", false
	}
	raw := val[1 : len(val)-1]
	return unescape(raw, bytes.IndexByte(raw, '\\') >= 0), true
}

// stringList returns the values of an array of strings.
func stringList(val []byte, kind byte) ([]string, bool) {
	if kind != kindArray {
		return nil, false
	}
	var out []string
	s := jsonScanner{b: val, i: 1}
	for {
		s.ws()
		if s.i >= len(val) {
			return nil, false
		}
		switch val[s.i] {
		case ']':
			return out, true
		case ',':
			s.i++
			continue
		case '"':
			st, en, esc, err := s.str()
			if err != nil {
				return nil, false
			}
			out = append(out, unescape(val[st:en], esc))
		default:
			return nil, false // not a string
		}
	}
}

// intValue reads a JSON integer (NumericDate): no fraction, no exponent, no
// string. Entra sends whole seconds; anything else is refused.
func intValue(val []byte, kind byte) (int64, bool) {
	if kind != kindNumber || len(val) == 0 || len(val) > 15 {
		return 0, false
	}
	var n int64
	neg := false
	i := 0
	if val[0] == '-' {
		neg = true
		i = 1
	}
	if i >= len(val) {
		return 0, false
	}
	for ; i < len(val); i++ {
		c := val[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}
