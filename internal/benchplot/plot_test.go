package benchplot

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestCDFIsAStaircaseToOne(t *testing.T) {
	s := CDF("x", []float64{3, 1, 2})
	if len(s.X) != 4 || s.X[0] != 1 || s.Y[0] != 0 || s.X[3] != 3 || s.Y[3] != 1 {
		t.Errorf("CDF = %v %v", s.X, s.Y)
	}
}

func TestTicksCoverTheRange(t *testing.T) {
	for _, r := range [][2]float64{{0, 1}, {0, 173.2}, {2, 20}, {0, 0.0004}} {
		tk := ticks(r[0], r[1])
		if len(tk) < 2 || len(tk) > 12 || tk[0] > r[0] || tk[len(tk)-1] < r[1] {
			t.Errorf("ticks(%v) = %v", r, tk)
		}
	}
}

func TestRenderIsValidSVG(t *testing.T) {
	var b bytes.Buffer
	err := Render(&b, `a <title> & "quotes"`, []Panel{
		{Title: "cdf", Series: []Series{CDF("P2P", []float64{1, 2}), CDF("HTTP only", nil)}, YMax: 1},
		{Title: "lines", Series: []Series{{Name: "off", X: []float64{2, 5}, Y: []float64{0.4, 0.8}, Markers: true}}},
	}, 2)
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(&b)
	names := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("invalid SVG: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			for _, a := range se.Attr {
				if a.Name.Local == "data-name" {
					names++
				}
			}
		}
	}
	if names != 3 {
		t.Errorf("%d series in the SVG, want 3", names)
	}
	if strings.Contains(b.String(), "NaN") {
		t.Error("NaN coordinates")
	}
	if Render(io.Discard, "", nil, 1) == nil {
		t.Error("no panels must be an error")
	}
}
