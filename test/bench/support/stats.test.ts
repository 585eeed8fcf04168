import { describe, expect, it } from 'vitest'
import { formatBytes, formatNumber, formatRatio, markdownTable, median, percentile } from './stats.ts'

describe('benchmark statistics', () => {
  it('takes medians of odd and even counts without reordering the input', () => {
    const values = [5, 1, 3]
    expect(median(values)).toBe(3)
    expect(values).toEqual([5, 1, 3])
    expect(median([4, 1, 3, 2])).toBe(2.5)
    expect(median([])).toBeNaN()
  })

  it('uses nearest-rank percentiles', () => {
    const values = Array.from({ length: 100 }, (_, index) => index + 1)
    expect(percentile(values, 50)).toBe(50)
    expect(percentile(values, 99)).toBe(99)
    expect(percentile(values, 100)).toBe(100)
    expect(percentile([7], 99)).toBe(7)
  })

  it('formats missing figures as a dash and keeps 3 significant digits', () => {
    expect(formatNumber(Number.NaN)).toBe('—')
    expect(formatNumber(0.012345)).toBe('0.0123')
    expect(formatNumber(2143.7)).toBe('2,144')
    expect(formatRatio(1.234)).toBe('1.23×')
    expect(formatBytes(1536)).toBe('1.5 KiB')
  })

  it('writes a markdown table with escaped cells and notes', () => {
    const text = markdownTable({ title: 'T', columns: ['a', 'b'], rows: [['x|y', '1']], notes: ['n'] })
    expect(text).toBe('### T\n\n| a | b |\n| --- | --- |\n| x\\|y | 1 |\n\n- n\n')
  })
})
