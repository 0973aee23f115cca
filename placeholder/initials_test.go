package placeholder

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestInitialsOf(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"cyrillic", "Анна Петрова", "АП"},
		{"one word", "john", "J"},
		{"hyphenated", "Jean-Luc Picard", "JP"},
		{"hyphen only word", "Jean-Luc", "JL"},
		{"accents and spaces", "  émile zola ", "ÉZ"},
		{"emoji skipped", "😀 Bob", "B"},
		{"emoji between", "Ann 🎉 Lee", "AL"},
		{"zwj emoji only", "👨‍👩‍👧", ""},
		{"greek", "Ωμέγα αλφα", "ΩΑ"},
		{"greek lower accented", " άλφα", "Ά"},
		{"three words", "Mary Jane Watson", "MW"},
		{"digits skipped", "2Pac Shakur", "PS"},
		{"digits only", "+7 900 123-45-67", ""},
		{"punctuation", "(Dr.) Who?", "DW"},
		{"apostrophe joins", "O'Brien", "O"},
		{"typographic apostrophe", "d’Artagnan Smith", "DS"},
		{"okina starts no word", "ʻIolani Kealoha", "IK"},
		{"okina inside the last word", "Kealoha ʻIolani", "KI"},
		{"okina typed as a quote", "‘Akaka", "A"},
		{"modifier apostrophe starts no word", "ʼAli Hassan", "AH"},
		{"dot separated", "john.smith", "JS"},
		{"empty", "", ""},
		{"whitespace only", " \t\n\u00a0\u3000", ""},
		{"cjk", "王小明", "王"},
		{"cjk two words", "王 小明", "王小"},
		{"arabic", "محمد علي", "مع"},
		{"hebrew", "דוד כהן", "דכ"},
		{"decomposed accent composes", "e\u0301mile", "É"},
		{"mark without precomposed form kept", "q\u0307ux", "Q\u0307"},
		{"stacked marks capped", "a\u0301\u0302\u0303\u0304\u0305b c", "\u00C1\u0302\u0303\u0304C"},
		{"leading mark ignored", "\u0301anna", "A"},
		{"hangul jamo compose", "\u1100\u1161 \u1102\u1161", "가나"},
		{"ligature dz title", "ǆemal", "Ǆ"},
		{"german sharp s", "ßtraße", "ß"},
		{"turkish dotless", "ılık ırmak", "II"},
		{"invalid utf8", "\xff\xfeAnna \xc3Bob", "AB"},
		{"invalid utf8 only", "\xff\xfe\xfd", ""},
		{"letters after 64 runes ignored", strings.Repeat("x", 64) + " Zed", "X"},
		{"last word within 64 runes", strings.Repeat("a", 60) + " bcd", "AB"},
		{"64th rune starts the last word", strings.Repeat("a", 62) + " b", "AB"},
		{"65th rune ignored", strings.Repeat("a", 63) + " b", "A"},
		// Runes are counted before NFC: 32 decomposed é are 64 runes.
		{"runes counted before composing", strings.Repeat("e\u0301", 32) + " b", "É"},
		// i + U+0307 has no precomposed form, İ + U+0307 does (U+0130).
		{"upper case composes", "i\u0307pek", "\u0130"},
		// A mark after the initial's word is not the initial's.
		{"marks of a later letter not kept", "Ab\u0301", "A"},
		{"very long name", strings.Repeat("Anna Maria ", 10000), "AM"},
		{"fullwidth latin", "ｊｏｈｎ ｄｏｅ", "ＪＤ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := InitialsOf(tt.in); got != tt.want {
				t.Errorf("InitialsOf(%q) = %q (%U), want %q (%U)", tt.in, got, []rune(got), tt.want, []rune(tt.want))
			}
		})
	}
}

// FuzzInitialsOf takes its seeds from testdata/fuzz/FuzzInitialsOf.
func FuzzInitialsOf(f *testing.F) {
	f.Fuzz(func(t *testing.T, name string) {
		got := InitialsOf(name)
		if !utf8.ValidString(got) {
			t.Fatalf("InitialsOf(%q) = %q: invalid UTF-8", name, got)
		}
		letters := 0
		for i, r := range got {
			switch {
			case unicode.IsLetter(r):
				letters++
			case unicode.IsMark(r) && i > 0:
			default:
				t.Fatalf("InitialsOf(%q) = %q: rune %U at %d is neither a letter nor a mark after one", name, got, r, i)
			}
		}
		if letters > 2 {
			t.Fatalf("InitialsOf(%q) = %q: %d letters", name, got, letters)
		}
		if got != InitialsOf(name) {
			t.Fatalf("InitialsOf(%q) not deterministic", name)
		}
	})
}

func BenchmarkInitialsOf(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		InitialsOf("Jean-Luc Picard")
	}
}
