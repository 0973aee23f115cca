package placeholder

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

const (
	// maxNameRunes bounds the work done on a display name, which comes from a
	// gateway and may be arbitrarily long.
	maxNameRunes = 64
	// maxMarks bounds the combining marks kept after a letter, so that
	// "Zalgo" text cannot stack dozens of accents on an initial.
	maxMarks = 3
)

// InitialsOf returns up to two initials of a display name, upper-cased: the
// first letter of the first word and the first letter of the last word, or a
// single letter for a one-word name. Words are separated by anything that is
// not a letter, a combining mark or an apostrophe, so "Jean-Luc Picard" gives
// "JP" and "O'Brien" gives "O"; emoji, digits and punctuation never become
// initials. Combining marks that follow a chosen letter are kept with it, and
// the result is in NFC. Only the first 64 runes of name are looked at; invalid
// UTF-8 bytes act as separators. InitialsOf returns "" when name holds no
// letter.
func InitialsOf(name string) string {
	name = norm.NFC.String(truncateRunes(name, maxNameRunes))

	var first, last string
	inWord := false
	for i, r := range name {
		switch {
		case unicode.IsMark(r) || isApostrophe(r):
			// Part of the current word (or a stray mark before one): neither
			// starts nor ends a word. Checked before letters: the ʻokina and
			// U+02BC are letters to Unicode (Lm), yet they never start one.
		case unicode.IsLetter(r):
			if !inWord {
				inWord = true
				in := initialAt(name, i)
				if first == "" {
					first = in
				} else {
					last = in
				}
			}
		default:
			inWord = false
		}
	}
	if first == "" {
		return ""
	}
	// Upper-casing may enable a composition (a letter whose lower case had
	// no precomposed form with the mark), hence the second NFC.
	return norm.NFC.String(first + last)
}

// initialAt returns the letter at byte offset i of s, upper-cased, followed
// by at most maxMarks combining marks that come right after it.
func initialAt(s string, i int) string {
	r, n := utf8.DecodeRuneInString(s[i:])
	var b strings.Builder
	b.WriteRune(unicode.ToUpper(r))
	marks := 0
	for _, m := range s[i+n:] {
		if !unicode.IsMark(m) || marks == maxMarks {
			break
		}
		b.WriteRune(m)
		marks++
	}
	return b.String()
}

// isApostrophe reports the apostrophes and glottal-stop letters names are
// written with: ', ’ and ʼ (O'Brien, ʼAli), and the Hawaiian ʻokina, also
// typed as ‘ (ʻIolani).
func isApostrophe(r rune) bool {
	return r == '\'' || r == '\u2019' || r == '\u02BC' || r == '\u02BB' || r == '\u2018'
}

// truncateRunes returns the prefix of s holding at most n runes, counting
// each invalid byte as one rune.
func truncateRunes(s string, n int) string {
	i := 0
	for ; n > 0 && i < len(s); n-- {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i]
}
