/**
 * The aarch64 and s390x Linux test guests' machines (docs/other-arches.md §3): the QEMU that runs
 * each, its Debian package, machine, console, the arguments it needs, and the qemu-user binary
 * that runs Debian's readers of that architecture.
 */
export interface ForeignMachine {
  readonly debian: 'arm64' | 's390x';
  readonly qemu: string;
  readonly qemuPackage: string;
  readonly machine: string;
  readonly console: string;
  readonly extra: readonly string[];
  readonly user: string;
}

export const foreignMachines: readonly ForeignMachine[] = [
  {
    debian: 'arm64',
    qemu: 'qemu-system-aarch64',
    qemuPackage: 'qemu-system-arm',
    machine: 'virt',
    console: 'ttyAMA0',
    extra: ['-device', 'vmcoreinfo'],
    user: 'qemu-aarch64-static',
  },
  {
    debian: 's390x',
    qemu: 'qemu-system-s390x',
    qemuPackage: 'qemu-system-misc',
    machine: 's390-ccw-virtio',
    console: 'ttysclp0',
    // No vmcoreinfo device on s390-ccw: the kernel's lowcore pointer gives VMCOREINFO.
    extra: [],
    user: 'qemu-s390x-static',
  },
];

export function foreignMachine(debian: ForeignMachine['debian']): ForeignMachine {
  return foreignMachines.find((m) => m.debian === debian)!;
}
