
/*
 * The harnesses' one line a check: "ok NAME", or "not ok NAME: DETAIL"
 * counted in check_failures (t/lib/LLM/Unit.pm reads the lines).
 */


#ifndef _T_UNIT_CHECK_H_INCLUDED_
#define _T_UNIT_CHECK_H_INCLUDED_


extern int  check_failures;

void check(int ok, const char *name, const char *detail);


#endif /* _T_UNIT_CHECK_H_INCLUDED_ */
