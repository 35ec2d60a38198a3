/* Test shim for Wine 8 only (Debian 12), never shipped: Rust's standard library calls
 * ProcessPrng from bcryptprimitives.dll (Windows 10 and later), which Wine 8 lacks. This
 * forwards it to RtlGenRandom (advapi32 SystemFunction036), which Wine has. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length) {
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
