# Doxygen input filter for fut.h (awk): fut.h's comments are plain C
# comments; this makes them Doxygen comments without changing the header
# and without moving a line (warnings keep fut.h's line numbers).
#  - the first comment of the file describes the file;
#  - a section ruler (/* ----- name */) opens a group, fut-name (spaces
#    become '-'): a man page per section.  A section's first comment, when
#    a blank line or an #if / #include follows it, describes the section;
#  - any other comment that opens a line documents what follows it; when it
#    sits at the left margin above several declarations (no blank line
#    between), it documents each of them (a member group: the Doxyfile sets
#    DISTRIBUTE_GROUP_DOC);
#  - a comment after code on the same line documents that code (/**<).

function starts_comment(s) { return s ~ /^[ \t]*\/\*([^*]|$)/ }
function is_ruler(s) { return s ~ /^\/\* -+ [^*]*\*\/$/ }
function ends_comment(s) { return index(s, "*/") > 0 }
# the group of a section ruler: fut-name, spaces made '-'
function label(s,    name) {
    name = title(s); gsub(/ /, "-", name)
    return "fut-" name
}
function title(s) {
    sub(/^\/\* -+ /, "", s); sub(/ *\*\/$/, "", s)
    return s
}
# a declaration's first line: at the margin, not a comment, brace or #if
function is_decl(s) {
    return s ~ /^[A-Za-z_#]/ && s !~ /^#(if|ifdef|ifndef|else|elif|endif|include)/
}
# the line after the comment that starts on line i
function after_comment(i) {
    while (i <= n && !ends_comment(line[i])) i++
    return i + 1
}
# declarations that follow the comment starting on line i, up to a blank
# line or the next comment
function decls_after(i,    j, c) {
    c = 0
    for (j = after_comment(i); j <= n && line[j] != "" && !starts_comment(line[j]); j++)
        if (is_decl(line[j])) c++
    return c
}

{ line[++n] = $0 }

END {
    # the file's comment ends with a list of the sections' pages
    sections = ""
    for (i = 1; i <= n; i++)
        if (is_ruler(line[i]))
            sections = sections (sections == "" ? "" : ", ") \
                "@ref " label(line[i]) " \"" label(line[i]) "(3)\""
    group = 0; members = 0; incomment = 0; open = 0; filedoc = 0
    for (i = 1; i <= n; i++) {
        s = line[i]; pre = ""
        if (incomment) {
            if (filedoc) {
                # its list of terms ("  term  text", text lines indented
                # under it) becomes a Markdown list
                if (s ~ /^ \*   [a-z]+  +[^ ]/) {
                    sub(/^ \*   /, "", s); term = s; sub(/ .*/, "", term)
                    sub(/^[a-z]+  +/, "", s); s = " * - **" term "** " s
                } else if (s ~ /^ \*      +[^ ]/) {
                    sub(/^ \*  +/, " *   ", s)
                }
            }
            if (ends_comment(s)) {
                incomment = 0
                if (filedoc && sections != "")
                    sub(/\*\/[ \t]*$/, "@sa " sections " */", s)
                filedoc = 0
                # the @{ that opens a section or a member group
                if (open) { sub(/\*\/[ \t]*$/, "@{ */", s); open = 0 }
            } else {
                sub(/[ \t]*\\$/, "", s)  # a macro's \ is not part of its comment
            }
            print s; continue
        }
        if (members && (s == "" || starts_comment(s))) {
            # a blank line or a new comment ends a member group
            pre = "/**@}*/ "; members = 0
            if (s == "") { print "/**@}*/"; continue }
        }
        if (i == 1 && s == "/*") {
            s = "/** @file"; filedoc = 1
        } else if (is_ruler(s)) {
            s = (group ? "/** @} */ " : "") "/** @defgroup " label(s) " " title(s)
            group = 1
            # the section's first comment describes it when nothing follows
            j = i + 1
            while (j <= n && line[j] == "") j++
            k = after_comment(j)
            if (j <= n && line[j] ~ /^\/\*([^*]|$)/ &&
                (line[k] == "" || line[k] ~ /^#(if|include)/)) {
                print s
                for (i++; i < j; i++) print line[i]
                s = line[j]; sub(/^\/\*/, "  ", s)
                if (ends_comment(s)) sub(/\*\/[ \t]*$/, "@{ */", s)
                else { incomment = 1; open = 1 }
                print s; continue
            }
            s = s " */ /** @{ */"
        } else if (starts_comment(s)) {
            sub(/\/\*/, "/**", s)
            if (group && s ~ /^\/\*/ && decls_after(i) > 1) {
                # inside the comment: a /**@{*/ of its own right after a
                # section's @{ would reopen the section
                members = 1
                if (ends_comment(s)) sub(/\*\/[ \t]*$/, "@{ */", s); else open = 1
            }
        } else if (s ~ /^[ \t]*[^ \t\/*].*[^ \t][ \t]+\/\*([^*]|$)/) {
            sub(/[ \t]+\/\*/, " /**<", s)
        }
        if (index(s, "/*") && !ends_comment(s)) {
            incomment = 1
            sub(/[ \t]*\\$/, "", s)  # a macro's \ is not part of its comment
        }
        if (i == n) {
            if (members) s = s " /**@}*/"
            if (group) s = s " /** @} */"
        }
        print pre s
    }
}
