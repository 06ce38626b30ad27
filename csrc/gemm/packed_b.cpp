#include "packed_b.h"

#include <algorithm>

#include "dispatch.h"
#include "k_blocks.h"
#include "pack.h"
#include "skinny.h"

namespace fusedprop::gemm {

template <class T>
PackedB<T>::PackedB(MatrixRef<const T> b)
    : isa_(active_isa_id()), bs_(blocks_for<T>(*active_kernels().config)), k_(b.rows), n_(b.cols),
      data_(runtime::Pages::huge), nt_rows_(runtime::Pages::huge) {
    if (k_ == 0 || n_ == 0) return;
    // the layout skinny_gemm reads as nt, and a W too large for L2 (config.h)
    if ((b.row_stride == 1 || k_ == 1) && double(k_) * double(n_) * double(sizeof(T)) >= kNtRowsMinBytes) {
        nt_rows_size_ = nt_rows_size<T>(k_, n_);
        pack_nt_rows(b.transposed(), nt_rows_.reserve(nt_rows_size_));
    }
    const index_t NR = bs_.nr, NC = bs_.nc, k_step = k_block(k_, bs_.kc);
    k_blocks_ = (k_ + k_step - 1) / k_step;
    for (index_t jc = 0; jc < n_; jc += NC)
        for (index_t pc = 0; pc < k_; pc += k_step) {
            offsets_.push_back(size_);
            size_ += static_cast<std::size_t>(round_up(std::min(NC, n_ - jc), NR) * std::min(k_step, k_ - pc));
        }
    T* dst = data_.reserve(size_);
    std::size_t block = 0;
    for (index_t jc = 0; jc < n_; jc += NC)
        for (index_t pc = 0; pc < k_; pc += k_step) {
            const index_t nc = std::min(NC, n_ - jc), kc = std::min(k_step, k_ - pc);
            pack_b(b.block(pc, jc, kc, nc), bs_.nr, dst + offsets_[block++], kc * NR);
        }
}

template <class T>
bool PackedB<T>::usable_with(Isa isa, const BlockSizes& bs) const {
    return isa == isa_ && bs.nr == bs_.nr && bs.kc == bs_.kc && bs.nc == bs_.nc;
}

template class PackedB<float>;
template class PackedB<double>;

}  // namespace fusedprop::gemm
