/* Line plots as PNG (libpng): training curves a person can look at. A small raster canvas, axes
 * with tick labels, up to 6 series each with its own y-range side (left or right), a legend.
 * Text uses a built-in 5x7 pixel font (digits, letters, a few symbols). */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/plot.h"

/* 5x7 glyphs, one byte per row, the low 5 bits left to right (bit 4 = leftmost column). */
static const struct { char c; unsigned char rows[7]; } k_font[] = {
    {'0', {14, 17, 19, 21, 25, 17, 14}}, {'1', {4, 12, 4, 4, 4, 4, 14}},    {'2', {14, 17, 1, 2, 4, 8, 31}},
    {'3', {31, 2, 4, 2, 1, 17, 14}},     {'4', {2, 6, 10, 18, 31, 2, 2}},   {'5', {31, 16, 30, 1, 1, 17, 14}},
    {'6', {6, 8, 16, 30, 17, 17, 14}},   {'7', {31, 1, 2, 4, 8, 8, 8}},     {'8', {14, 17, 17, 14, 17, 17, 14}},
    {'9', {14, 17, 17, 15, 1, 2, 12}},   {'.', {0, 0, 0, 0, 0, 12, 12}},    {'-', {0, 0, 0, 31, 0, 0, 0}},
    {'+', {0, 4, 4, 31, 4, 4, 0}},       {'(', {2, 4, 8, 8, 8, 4, 2}},      {')', {8, 4, 2, 2, 2, 4, 8}},
    {'/', {1, 1, 2, 4, 8, 16, 16}},      {':', {0, 12, 12, 0, 12, 12, 0}},  {'%', {24, 25, 2, 4, 8, 19, 3}},
    {'_', {0, 0, 0, 0, 0, 0, 31}},       {'=', {0, 0, 31, 0, 31, 0, 0}},    {'a', {0, 0, 14, 1, 15, 17, 15}},
    {'b', {16, 16, 22, 25, 17, 17, 30}}, {'c', {0, 0, 14, 16, 16, 17, 14}}, {'d', {1, 1, 13, 19, 17, 17, 15}},
    {'e', {0, 0, 14, 17, 31, 16, 14}},   {'f', {6, 9, 8, 28, 8, 8, 8}},     {'g', {0, 15, 17, 17, 15, 1, 14}},
    {'h', {16, 16, 22, 25, 17, 17, 17}}, {'i', {4, 0, 12, 4, 4, 4, 14}},    {'j', {2, 0, 6, 2, 2, 18, 12}},
    {'k', {16, 16, 18, 20, 24, 20, 18}}, {'l', {12, 4, 4, 4, 4, 4, 14}},    {'m', {0, 0, 26, 21, 21, 17, 17}},
    {'n', {0, 0, 22, 25, 17, 17, 17}},   {'o', {0, 0, 14, 17, 17, 17, 14}}, {'p', {0, 0, 30, 17, 30, 16, 16}},
    {'q', {0, 0, 13, 19, 15, 1, 1}},     {'r', {0, 0, 22, 25, 16, 16, 16}}, {'s', {0, 0, 14, 16, 14, 1, 30}},
    {'t', {8, 8, 28, 8, 8, 9, 6}},       {'u', {0, 0, 17, 17, 17, 19, 13}}, {'v', {0, 0, 17, 17, 17, 10, 4}},
    {'w', {0, 0, 17, 17, 21, 21, 10}},   {'x', {0, 0, 17, 10, 4, 10, 17}},  {'y', {0, 0, 17, 17, 15, 1, 14}},
    {'z', {0, 0, 31, 2, 4, 8, 31}},
};

typedef struct {
  int w, h;
  unsigned char *px; /* RGB */
} canvas;

static void put(canvas *c, int x, int y, const unsigned char rgb[3]) {
  if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
  memcpy(c->px + 3 * ((size_t)y * c->w + x), rgb, 3);
}

static void line(canvas *c, int x0, int y0, int x1, int y1, const unsigned char rgb[3], int thick) {
  int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, e = dx + dy;
  for (;;) {
    for (int t = 0; t < thick; t++) put(c, x0, y0 + t, rgb), put(c, x0 + t, y0, rgb);
    if (x0 == x1 && y0 == y1) break;
    int e2 = 2 * e;
    if (e2 >= dy) e += dy, x0 += sx;
    if (e2 <= dx) e += dx, y0 += sy;
  }
}

static void text(canvas *c, int x, int y, const char *s, const unsigned char rgb[3]) {
  for (; *s; s++, x += 6) {
    char ch = (*s >= 'A' && *s <= 'Z') ? (char)(*s - 'A' + 'a') : *s;
    for (size_t g = 0; g < sizeof k_font / sizeof k_font[0]; g++) {
      if (k_font[g].c != ch) continue;
      for (int r = 0; r < 7; r++)
        for (int b = 0; b < 5; b++)
          if (k_font[g].rows[r] & (16 >> b)) put(c, x + b, y + r, rgb);
    }
  }
}

static void fmt_tick(double v, char *buf, size_t len) {
  if (fabs(v) >= 1000 || (fabs(v) < 0.01 && v != 0)) snprintf(buf, len, "%.1e", v);
  else snprintf(buf, len, "%.3g", v);
}

static const unsigned char k_colors[6][3] = {{31, 119, 180}, {214, 39, 40}, {44, 160, 44},
                                             {255, 127, 14}, {148, 103, 189}, {140, 86, 75}};

vx_status vx_plot_png(const char *path, const char *title, const char *xlabel, const vx_plot_series *series,
                      int nseries, char *errbuf, size_t errlen) {
  canvas c = {800, 500, NULL};
  c.px = malloc((size_t)c.w * c.h * 3);
  if (!c.px) return VX_ERR_OUT_OF_MEMORY;
  memset(c.px, 255, (size_t)c.w * c.h * 3);
  const unsigned char black[3] = {0, 0, 0}, grey[3] = {200, 200, 200};
  int L = 70, R = c.w - 70, T = 40, B = c.h - 50;
  double xmin = INFINITY, xmax = -INFINITY, ymin[2] = {INFINITY, INFINITY}, ymax[2] = {-INFINITY, -INFINITY};
  for (int s = 0; s < nseries; s++)
    for (int i = 0; i < series[s].n; i++) {
      double x = series[s].x[i], y = series[s].y[i];
      if (!isfinite(x) || !isfinite(y)) continue;
      int a = series[s].right_axis != 0;
      xmin = fmin(xmin, x), xmax = fmax(xmax, x), ymin[a] = fmin(ymin[a], y), ymax[a] = fmax(ymax[a], y);
    }
  if (!(xmax > xmin)) xmin = 0, xmax = 1;
  for (int a = 0; a < 2; a++) {
    if (!isfinite(ymin[a])) ymin[a] = 0, ymax[a] = 1;
    if (!(ymax[a] > ymin[a])) ymax[a] = ymin[a] + 1;
    double pad = 0.05 * (ymax[a] - ymin[a]);
    ymin[a] -= pad, ymax[a] += pad;
  }
  line(&c, L, B, R, B, black, 1);
  line(&c, L, T, L, B, black, 1);
  int has_right = 0;
  for (int s = 0; s < nseries; s++) has_right |= series[s].right_axis != 0;
  if (has_right) line(&c, R, T, R, B, black, 1);
  char buf[64];
  for (int t = 0; t <= 5; t++) { /* grid and ticks */
    int y = B - (B - T) * t / 5, x = L + (R - L) * t / 5;
    line(&c, L + 1, y, R - 1, y, grey, 1);
    fmt_tick(ymin[0] + (ymax[0] - ymin[0]) * t / 5, buf, sizeof buf);
    text(&c, L - 6 - 6 * (int)strlen(buf), y - 3, buf, black);
    if (has_right) {
      fmt_tick(ymin[1] + (ymax[1] - ymin[1]) * t / 5, buf, sizeof buf);
      text(&c, R + 6, y - 3, buf, black);
    }
    fmt_tick(xmin + (xmax - xmin) * t / 5, buf, sizeof buf);
    text(&c, x - 3 * (int)strlen(buf), B + 8, buf, black);
  }
  if (title) text(&c, c.w / 2 - 3 * (int)strlen(title), 14, title, black);
  if (xlabel) text(&c, c.w / 2 - 3 * (int)strlen(xlabel), B + 26, xlabel, black);
  for (int s = 0; s < nseries; s++) {
    int a = series[s].right_axis != 0, px = -1, py = -1;
    const unsigned char *col = k_colors[s % 6];
    for (int i = 0; i < series[s].n; i++) {
      double xv = series[s].x[i], yv = series[s].y[i];
      if (!isfinite(xv) || !isfinite(yv)) { px = -1; continue; }
      int x = L + (int)lround((xv - xmin) / (xmax - xmin) * (R - L));
      int y = B - (int)lround((yv - ymin[a]) / (ymax[a] - ymin[a]) * (B - T));
      if (px >= 0) line(&c, px, py, x, y, col, 2);
      else put(&c, x, y, col);
      px = x, py = y;
    }
    int ly = T + 8 + 12 * s; /* legend */
    line(&c, L + 12, ly + 3, L + 30, ly + 3, col, 2);
    snprintf(buf, sizeof buf, "%s%s", series[s].name ? series[s].name : "", a ? " (right)" : "");
    text(&c, L + 36, ly, buf, black);
  }
  /* write aside, then rename: never a half-written picture under the final name */
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  vx_status st = VX_ERR_IO;
  png_structp png = f ? png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL) : NULL;
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (png && info && !setjmp(png_jmpbuf(png))) {
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)c.w, (png_uint_32)c.h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < c.h; y++) png_write_row(png, c.px + 3 * (size_t)y * c.w);
    png_write_end(png, NULL);
    st = VX_OK;
  }
  if (png) png_destroy_write_struct(&png, info ? &info : NULL);
  if (f && fclose(f) != 0) st = VX_ERR_IO;
  if (st == VX_OK && rename(tmp, path) != 0) st = VX_ERR_IO;
  if (st != VX_OK) {
    unlink(tmp);
    snprintf(errbuf, errlen, "%s: cannot write the PNG plot", path);
  }
  free(c.px);
  return st;
}
