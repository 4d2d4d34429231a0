// The pages, served from the binary (no CDN, no installed files): ui/web/*, embedded at build
// time by ui/embed.cmake.
#pragma once

namespace gale::ui {
extern const char* const kIndexHtml;
extern const char* const kAppJs;
extern const char* const kStyleCss;
}  // namespace gale::ui
