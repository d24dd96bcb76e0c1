# Doxygen input filter for fut.h (sed -E): fut.h's comments are plain C
# comments; this makes them Doxygen comments without changing the header.
#  - the first comment of the file describes the file;
#  - a comment that opens a line documents what follows it;
#  - a comment after code on the same line documents that code (/**<);
#  - section rulers (/* ----- name */) stay plain comments.
1s|^/\*$|/** @file|
/^[[:space:]]*\/\* -{3,}/b
s|^([[:space:]]*)/\*([^*]\|$)|\1/**\2|
s|^([[:space:]]*[^[:space:]/*].*[^[:space:]])[[:space:]]+/\*([^*])|\1 /**<\2|
