//! Text for charts: the bundled DejaVu Sans, and a drawing backend that sets it properly.
//!
//! plotters' own ab_glyph text path drops each glyph's left side bearing and sizes fonts by line
//! height rather than by em, so pairs such as "Tr" or "Te" collide and text comes out small.
//! [`ChartBackend`] wraps the bitmap backend and lays text out itself (advances, kerning and side
//! bearings from the font, anti-aliased coverage, the four right-angle rotations plotters asks for);
//! every other drawing call goes straight to the bitmap backend.

use std::path::Path;
use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, Glyph, PxScale, ScaleFont, point};
use plotters::backend::BitMapBackend;
use plotters::style::FontStyle;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
};
use sluice_proto::StageError;

const REGULAR: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
const BOLD: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-Bold.ttf");

/// The two faces charts use.
pub struct Fonts {
    regular: FontRef<'static>,
    bold: FontRef<'static>,
}

impl Fonts {
    fn face(&self, style: FontStyle) -> &FontRef<'static> {
        match style {
            FontStyle::Bold => &self.bold,
            _ => &self.regular,
        }
    }
}

/// The bundled fonts, parsed once per process. They are also registered with plotters as
/// "sans-serif", so any text plotters measures on its own uses the same faces.
pub fn fonts() -> Result<&'static Fonts, StageError> {
    static FONTS: OnceLock<Result<Fonts, String>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let parse = |bytes: &'static [u8], file: &str| {
                FontRef::try_from_slice(bytes).map_err(|_| {
                    format!("the bundled font assets/fonts/{file} is not a valid font")
                })
            };
            let fonts = Fonts {
                regular: parse(REGULAR, "DejaVuSans.ttf")?,
                bold: parse(BOLD, "DejaVuSans-Bold.ttf")?,
            };
            for (style, bytes) in [(FontStyle::Normal, REGULAR), (FontStyle::Bold, BOLD)] {
                plotters::style::register_font("sans-serif", style, bytes).map_err(|_| {
                    "the bundled fonts could not be registered with plotters".to_string()
                })?;
            }
            Ok(fonts)
        })
        .as_ref()
        .map_err(|e| StageError::internal(e.clone()))
}

/// One line of text laid out at the origin, baseline at y = 0.
struct Line {
    glyphs: Vec<Glyph>,
    width: f32,
    ascent: f32,
    /// Negative: how far below the baseline the font reaches.
    descent: f32,
}

impl Line {
    fn height(&self) -> f32 {
        self.ascent - self.descent
    }
}

/// Lays out `text` with `size` pixels per em.
fn layout(font: &FontRef<'static>, size: f64, text: &str) -> Line {
    // ab_glyph scales so that ascent - descent is the given pixel height; charts (like CSS) mean
    // the em size, so convert.
    let units_per_em = font.units_per_em().unwrap_or(2048.0);
    let scale = PxScale::from(size as f32 * font.height_unscaled() / units_per_em);
    let scaled = font.as_scaled(scale);
    let mut glyphs = Vec::with_capacity(text.len());
    let mut caret = 0.0f32;
    let mut previous = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(prev) = previous {
            caret += scaled.kern(prev, id);
        }
        glyphs.push(id.with_scale_and_position(scale, point(caret, 0.0)));
        caret += scaled.h_advance(id);
        previous = Some(id);
    }
    Line {
        glyphs,
        width: caret,
        ascent: scaled.ascent(),
        descent: scaled.descent(),
    }
}

/// The bitmap backend with proper text.
pub struct ChartBackend<'a> {
    inner: BitMapBackend<'a>,
    fonts: &'static Fonts,
}

impl<'a> ChartBackend<'a> {
    /// A PNG of `size` pixels, written to `path` by `present`.
    pub fn new(path: &'a Path, size: (u32, u32), fonts: &'static Fonts) -> Self {
        ChartBackend {
            inner: BitMapBackend::new(path, size),
            fonts,
        }
    }
}

type Error = <BitMapBackend<'static> as DrawingBackend>::ErrorType;

impl DrawingBackend for ChartBackend<'_> {
    type ErrorType = Error;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.present()
    }

    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), DrawingErrorKind<Error>> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> Result<(u32, u32), DrawingErrorKind<Error>> {
        let line = layout(self.fonts.face(style.style()), style.size(), text);
        let (w, h) = (line.width.ceil() as i32, line.height().ceil() as i32);
        // Sizes are of the text as drawn, so a rotated label is tall, not wide.
        let (w, h) = style.transform().transform(w, h);
        Ok((w.unsigned_abs(), h.unsigned_abs()))
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Error>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let font = self.fonts.face(style.style());
        let line = layout(font, style.size(), text);
        // The anchor is a point of the text's box (before rotation), as plotters defines it.
        let anchor = style.anchor();
        let dx = match anchor.h_pos {
            HPos::Left => 0.0,
            HPos::Center => -line.width / 2.0,
            HPos::Right => -line.width,
        };
        let dy = match anchor.v_pos {
            VPos::Top => 0.0,
            VPos::Center => -line.height() / 2.0,
            VPos::Bottom => -line.height(),
        };
        let baseline = dy + line.ascent;
        let transform = style.transform();
        let mut coverage: Vec<(i32, i32, f32)> = Vec::new();
        for mut glyph in line.glyphs {
            glyph.position.x += dx;
            glyph.position.y += baseline;
            let Some(outline) = font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outline.px_bounds();
            coverage.clear();
            outline.draw(|x, y, c| {
                if c > 0.0 {
                    coverage.push((
                        bounds.min.x as i32 + x as i32,
                        bounds.min.y as i32 + y as i32,
                        c,
                    ));
                }
            });
            for &(x, y, c) in &coverage {
                let (x, y) = transform.transform(x, y);
                let alpha = color.alpha * f64::from(c.min(1.0));
                self.inner.draw_pixel(
                    (pos.0 + x, pos.1 + y),
                    BackendColor {
                        alpha,
                        rgb: color.rgb,
                    },
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kerning_and_bearings_keep_glyphs_apart() {
        let fonts = fonts().unwrap();
        let line = layout(&fonts.regular, 20.0, "Tr");
        let t = fonts
            .regular
            .outline_glyph(line.glyphs[0].clone())
            .unwrap()
            .px_bounds();
        let r = fonts
            .regular
            .outline_glyph(line.glyphs[1].clone())
            .unwrap()
            .px_bounds();
        // The r tucks under the T's bar but its stem starts right of the T's stem (the T's
        // centre), as a typesetter would set it.
        let t_stem = (t.min.x + t.max.x) / 2.0;
        assert!(r.min.x > t_stem + 1.0, "T {t:?} r {r:?}");
    }

    #[test]
    fn sizes_are_ems() {
        let fonts = fonts().unwrap();
        // DejaVu Sans digits are 0.636 em wide: ten at 20 px per em are about 127 px.
        let line = layout(&fonts.regular, 20.0, "0123456789");
        assert!((line.width - 127.2).abs() < 1.0, "{}", line.width);
        assert!(
            line.height() > 20.0 && line.height() < 25.0,
            "{}",
            line.height()
        );
    }
}
