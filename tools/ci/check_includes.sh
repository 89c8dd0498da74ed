#!/usr/bin/env bash
# check_includes.sh — no circles between the library's source files (issue 18, item 5).
#
# A .c file X depends on a .c file Y (Y != X) when
#   - X includes (#include "...", resolved against X's folder, src/ and include/) a header H
#     whose implementation file H.c (same folder, same stem) is Y, unless H is X's own too (H
#     declares a function X defines: kernels.h is conv.c's as well as kernels.c's); or
#   - X calls a function that Y defines (not static), declared in whatever header: this sees
#     circles that hide behind a header shared by several .c files (kernels.h for conv.c and
#     kernels.c, weights.h for weights.c, pth.c and safetensors.c).
# Any circle among those edges is an error, two files (X includes Y's header and Y.c includes
# X.h back) or longer: one line per circle (per strongly connected set of files), one path
# through it with what each step uses. Comments and strings are skipped; headers' own includes
# are not followed. bash, grep and POSIX awk (mawk) only.
#
#   tools/ci/check_includes.sh [ROOT]     ROOT: the tree to check (default: this repository)
# Prints "check-includes: ok (N files, M edges)" and exits 0, or the circles and exits 1.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root"
mapfile -t files < <(find src -name '*.c' | LC_ALL=C sort)
[ ${#files[@]} -gt 0 ] || { echo "check-includes: no src/**/*.c under $root" >&2; exit 2; }

awk -v FILES="${files[*]}" '
function add_edge(x, y, why,    k) {
    if (x == y) return
    k = x SUBSEP y
    if (!(k in why_of)) { why_of[k] = why; nedges++; out[x] = out[x] " " y }
    else if (index(" " why_of[k] ", ", " " why ", ") == 0 && length(why_of[k]) < 80)
        why_of[k] = why_of[k] ", " why
}
# One line of C without its comments, string and char literals (incomment carries a /* */ over
# lines); "" for preprocessor lines (and their continuations).
function strip(line,    out, tok, i, n, c) {
    if (incpp) { incpp = (line ~ /\\$/); return "" }
    if (!incomment && line ~ /^[ \t]*#/) { incpp = (line ~ /\\$/); return "" }
    out = ""
    while (line != "") {
        if (incomment) {
            i = index(line, "*/")
            if (!i) return out
            line = substr(line, i + 2); incomment = 0; out = out " "
            continue
        }
        if (!match(line, LEXRE)) { out = out line; break }
        out = out substr(line, 1, RSTART - 1); tok = substr(line, RSTART, RLENGTH)
        line = substr(line, RSTART + RLENGTH)
        if (tok == "/*") incomment = 1
        else if (tok == "//") break
        else {
            n = length(line)
            for (i = 1; i <= n; i++) {
                c = substr(line, i, 1)
                if (c == "\\") i++
                else if (c == tok) break
            }
            line = substr(line, i + 1); out = out (tok == "\"" ? "\"\"" : "0")
        }
    }
    return out
}
# One file: its quoted includes, its top-level non-static function definitions (the text at depth
# 0 since the last ; or } that ends in "name(...) {"), and the names it calls.
function scan(f,    line, inc, dir, i, n, c, name, rest) {
    dir = f; sub(/\/[^\/]*$/, "", dir)
    incomment = 0; incpp = 0; depth = 0; head = ""
    while ((getline line < f) > 0) {
        if (line ~ /^[ \t]*#[ \t]*include[ \t]*"/) {
            inc = line; sub(/^[^"]*"/, "", inc); sub(/".*$/, "", inc)
            if (is_file[dir "/" inc]) incs[f] = incs[f] " " dir "/" inc
            else if (is_file["src/" inc]) incs[f] = incs[f] " src/" inc
            else incs[f] = incs[f] " include/" inc
        }
        line = strip(line)
        n = length(line)
        for (i = 1; i <= n; i++) {
            c = substr(line, i, 1)
            if (c == "{") {
                if (depth == 0 && head !~ /(^|[^A-Za-z0-9_])(static|typedef)[^A-Za-z0-9_]/ && head !~ /=/ &&
                    match(head, /[A-Za-z_][A-Za-z0-9_]*[ \t]*\(/)) {
                    name = substr(head, RSTART, RLENGTH); sub(/[ \t]*\($/, "", name)
                    if (substr(head, RSTART + RLENGTH) ~ /\)[ \t]*$/) defs[f] = defs[f] " " name
                }
                depth++; head = ""
            } else if (c == "}") { depth--; head = "" }
            else if (c == ";") { if (depth == 0) head = "" }
            else if (depth == 0) head = head c
        }
        if (depth == 0) head = head " "
        rest = line
        while (match(rest, /[A-Za-z_][A-Za-z0-9_]*[ \t]*\(/)) {
            name = substr(rest, RSTART, RLENGTH); sub(/[ \t]*\($/, "", name)
            used[f] = used[f] " " name
            rest = substr(rest, RSTART + RLENGTH)
        }
    }
    close(f)
}
BEGIN {
    LEXRE = "/\\*|//|\"|" sprintf("%c", 39); nedges = 0
    nf = split(FILES, file, " ")
    for (i = 1; i <= nf; i++) is_file[file[i]] = 1
    for (i = 1; i <= nf; i++) {
        h = file[i]; sub(/\.c$/, ".h", h)
        if ((getline line < h) >= 0) { close(h); impl[h] = file[i]; is_file[h] = 1 }
    }
    cmd = "find src include -name \"*.h\" 2>/dev/null"
    while ((cmd | getline h) > 0) is_file[h] = 1
    close(cmd)
    for (i = 1; i <= nf; i++) scan(file[i])
    for (h in impl) {                           # the names each implemented header declares
        incomment = 0; incpp = 0
        while ((getline line < h) > 0) {
            rest = strip(line)
            while (match(rest, /[A-Za-z_][A-Za-z0-9_]*[ \t]*\(/)) {
                name = substr(rest, RSTART, RLENGTH); sub(/[ \t]*\($/, "", name)
                declares[h, name] = 1
                rest = substr(rest, RSTART + RLENGTH)
            }
        }
        close(h)
    }
    for (i = 1; i <= nf; i++) {
        nd = split(defs[file[i]], d, " ")
        for (j = 1; j <= nd; j++) { own[file[i], d[j]] = 1; owner[d[j]] = owner[d[j]] " " file[i] }
    }
    for (i = 1; i <= nf; i++) {
        x = file[i]
        ni = split(incs[x], inc, " ")
        nd = split(defs[x], d, " ")
        for (j = 1; j <= ni; j++) {
            if (!(inc[j] in impl)) continue
            for (k = 1; k <= nd; k++) if (declares[inc[j], d[k]]) break
            if (k > nd) add_edge(x, impl[inc[j]], "#include \"" inc[j] "\"")
        }
        nu = split(used[x], u, " ")
        for (j = 1; j <= nu; j++) {
            if (own[x, u[j]] || !(u[j] in owner)) continue
            no = split(owner[u[j]], o, " ")
            for (k = 1; k <= no; k++) add_edge(x, o[k], u[j] "()")
        }
    }
    # reachability (the graph is small: a few dozen files)
    for (i = 1; i <= nf; i++) { no = split(out[file[i]], o, " "); for (k = 1; k <= no; k++) reach[file[i], o[k]] = 1 }
    for (k = 1; k <= nf; k++) for (i = 1; i <= nf; i++) if (reach[file[i], file[k]])
        for (j = 1; j <= nf; j++) if (reach[file[k], file[j]]) reach[file[i], file[j]] = 1
    ncyc = 0
    for (i = 1; i <= nf; i++) {
        x = file[i]
        if (!reach[x, x] || (x in done)) continue
        members = 0
        for (j = 1; j <= nf; j++) if (reach[x, file[j]] && reach[file[j], x]) { done[file[j]] = 1; members++ }
        # shortest path x -> ... -> x inside the circle (breadth first), with what each step uses
        delete prev; qh = 1; qt = 0; found = ""
        no = split(out[x], o, " ")
        for (k = 1; k <= no; k++) if (reach[o[k], x] && !(o[k] in prev)) { prev[o[k]] = x; q[++qt] = o[k] }
        while (qh <= qt && found == "") {
            y = q[qh++]
            if (y == x) { found = y; break }
            no = split(out[y], o, " ")
            for (k = 1; k <= no; k++) if (reach[o[k], x] && !(o[k] in prev)) {
                prev[o[k]] = y; q[++qt] = o[k]
                if (o[k] == x) { found = x; break }
            }
        }
        path = ""; y = x
        do { p = prev[y]; path = " -> " y " (" why_of[p, y] ")" path; y = p } while (y != x)
        steps = split(path, o, " -> ") - 1
        print "check-includes: circle: " x path (members > steps ? " [" members " files in this circle]" : "")
        ncyc++
    }
    if (ncyc) { print "check-includes: " ncyc " circle(s) among " nf " files (" nedges " edges)"; exit 1 }
    print "check-includes: ok (" nf " files, " nedges " edges)"
}'
