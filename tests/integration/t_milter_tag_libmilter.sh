#!/usr/bin/env bash
# t_milter_tag_libmilter.sh -- t_milter_tag.sh with milter_engine =
# libmilter: the same filters, the same expectations, on the other engine.
POSTLINK_TEST_MILTER_ENGINE=libmilter exec "${abs_top_srcdir:-.}/tests/integration/t_milter_tag.sh"
