// B packed once, ahead of time: what a caller that multiplies by the same B
// many times (a frozen layer's W^T) keeps and passes back to gemm(), so the
// driver skips loop 4's packing of B.
//
// The layout is exactly what the driver would pack itself (pack.h, drawn in
// ukernel.h): for each NC block of columns (loop 5), for each K block (loop
// 4, cut by k_blocks.h), ceil(nc / NR) micro-panels of kc x NR. So a GEMM on
// pre-packed B gives bitwise the result of the same GEMM that packs.
//
// When b is W^T for a W with contiguous rows (a layer's weight) too large
// for L2 (config.h's kNtRowsMinBytes), W's rows are also kept interleaved
// for the small-batch kernels (skinny.h, pack_nt_rows): one row of A then
// reads one stream in place of one per row of W.
//
// A PackedB belongs to the kernels that were active when it was made (ISA,
// NR, KC, NC). gemm() checks usable_with() and packs from b as usual when the
// kernels have changed since (set_isa, set_block_sizes): never a wrong
// result, only a slower one.
#pragma once

#include <vector>

#include "config.h"
#include "runtime/aligned_buffer.h"
#include "runtime/matrix_ref.h"

namespace fusedprop::gemm {

template <class T>
class PackedB {
public:
    // Packs all of b (k x n, any strides) for the active kernels.
    explicit PackedB(MatrixRef<const T> b);

    index_t rows() const { return k_; }
    index_t cols() const { return n_; }
    std::size_t bytes() const { return (size_ + nt_rows_size_) * sizeof(T); }
    // W's rows for the skinny nt kernels, or nullptr (b was not W^T of such a W).
    const T* nt_rows() const { return nt_rows_size_ ? nt_rows_.data() : nullptr; }

    // Packed for these kernels and block sizes?
    bool usable_with(Isa isa, const BlockSizes& bs) const;
    // The panels of NC block jc_index (loop 5) and K block pc_index (loop 4).
    const T* block(index_t jc_index, index_t pc_index) const {
        return data_.data() + offsets_[static_cast<std::size_t>(jc_index * k_blocks_ + pc_index)];
    }

private:
    Isa isa_;
    BlockSizes bs_;
    index_t k_ = 0, n_ = 0, k_blocks_ = 0;
    std::size_t size_ = 0, nt_rows_size_ = 0;
    std::vector<std::size_t> offsets_;
    runtime::AlignedBuffer<T> data_, nt_rows_;
};

extern template class PackedB<float>;
extern template class PackedB<double>;

}  // namespace fusedprop::gemm
