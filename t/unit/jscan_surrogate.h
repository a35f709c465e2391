
/*
 * For the harnesses that compare the scanner with yajl: whether a
 * document has a \uD800-\uDFFF escape, which yajl decodes its own way
 * when it is not half of a pair.
 */


#ifndef _JSCAN_SURROGATE_H_INCLUDED_
#define _JSCAN_SURROGATE_H_INCLUDED_


static int
has_surrogate(const u_char *p, size_t len)
{
    size_t  i;

    for (i = 0; i + 3 < len; i++) {
        if (p[i] == '\\' && p[i + 1] == 'u' && (p[i + 2] | 0x20) == 'd'
            && ((p[i + 3] >= '8' && p[i + 3] <= '9')
                || ((p[i + 3] | 0x20) >= 'a' && (p[i + 3] | 0x20) <= 'f')))
        {
            return 1;
        }
    }

    return 0;
}


#endif /* _JSCAN_SURROGATE_H_INCLUDED_ */
