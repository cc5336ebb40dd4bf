/*
 * f16.h: IEEE 754 half <-> float conversion (round to nearest even), for
 * vectors stored with dtype 'f16', and float -> bfloat16 for the BF16 and
 * AMX products' weights. Portable C; no F16C needed.
 */
#ifndef BN_F16_H
#define BN_F16_H

#include <stddef.h>
#include <stdint.h>

uint16_t bn_f32_to_f16(float f);
float bn_f16_to_f32(uint16_t h);
void bn_f32_to_f16_array(const float *in, uint16_t *out, size_t n);
void bn_f16_to_f32_array(const uint16_t *in, float *out, size_t n);
/* float -> bfloat16, round to nearest even (a NaN stays a NaN): the
 * rounding of vcvtneps2bf16 and vcvtne2ps2bf16 on normal numbers. */
uint16_t bn_f32_to_bf16(float f);

#endif
