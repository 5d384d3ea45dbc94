# sources.awk -- print the .c files of the project's three static libraries
# (libplcommon, libplstore, libplstate) as Makefile.am lists them, so the
# fuzz build compiles exactly what the daemons link, with fuzz flags.
/^(lib_libplcommon_a|db_libplstore_a|state_libplstate_a)_SOURCES[ \t]*\+?=/ {
    on = 1
    sub(/^[^=]*=/, "")
}
on {
    for (i = 1; i <= NF; i++)
        if ($i ~ /\.c$/)
            print $i
    if ($0 !~ /\\[ \t]*$/)
        on = 0
}
