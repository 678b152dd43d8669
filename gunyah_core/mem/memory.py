"""Memory ownership: who owns each page, each VM's stage-2 view, and memparcel traffic.

Models the RM-level rules of MEM_LEND/SHARE/DONATE, ACCEPT, RELEASE, RECLAIM and NOTIFY
(facts §8.2-8.5) over a small simulated physical memory of ``PAGE_SIZE`` pages.
Simplified: IPA = PA (identity) unless an accept picks an IPA; page contents are one int
label per page (sanitize sets it to 0), not bytes; memextents are not separate objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .memparcel import (
    BORROWED,
    DONATED_IN,
    LENT,
    MEMPARCEL_HANDLE_INVALID,
    MEMPARCEL_HANDLE_MASK,
    MEMPARCEL_MAX_PER_OWNER,
    OWNED,
    OWNER_STATES,
    PAGE_SIZE,
    SHARED,
    Mapping,
    MemError,
    MemParcel,
    ParcelState,
    PgtableAccess,
    TransType,
    access_bit,
    check_lists,
    coalesce,
    notify_messages,
    rights_str,
    sgl_pages,
)

Emit = Callable[..., None]
RWX = int(PgtableAccess.RWX)


def _no_emit(kind: str, **fields: object) -> None:
    """Default sink when the model is used without a trace."""


class MemoryModel:
    """Pages, owners, per-VM stage-2 tables and live memparcels; reports through ``emit``."""

    def __init__(self, emit: Emit | None = None) -> None:
        self._emit = emit or _no_emit
        self._owner: dict[int, int] = {}  # physical page -> owning vmid
        self._contents: dict[int, int] = {}  # physical page -> label
        self._s2: dict[int, dict[int, Mapping]] = {}  # vmid -> IPA page -> mapping
        self._parcels: dict[int, MemParcel] = {}
        self._page_parcel: dict[int, int] = {}  # physical page -> handle
        self._next_handle = 0
        # Demand paging (demand_paging.py, facts §10.2): physical page -> the VM whose
        # memextent it was donated into by memextent_donate, mapped there or not yet,
        # and the VM that gave it.
        self._given: dict[int, int] = {}
        self._donor: dict[int, int] = {}

    # --- ownership at boot -------------------------------------------------------------
    def add_region(self, vmid: int, base: int, size: int, rights: int = RWX,
                   contents: int = 0) -> None:
        """Give ``vmid`` pages [base, base+size) and map them at IPA = PA.

        Raises ARGUMENT_INVALID (unaligned/empty) or MEM_INVALID (a page already owned).
        """
        if base < 0 or size <= 0 or base % PAGE_SIZE or size % PAGE_SIZE:
            raise MemError("ARGUMENT_INVALID", f"region {base:#x}+{size:#x} not page-aligned")
        pages = range(base // PAGE_SIZE, (base + size) // PAGE_SIZE)
        table = self._s2.setdefault(vmid, {})
        if any(p in self._owner or p in table for p in pages):
            raise MemError("MEM_INVALID", f"region {base:#x}+{size:#x} already owned or mapped")
        for p in pages:
            self._owner[p] = vmid
            self._contents[p] = contents
            table[p] = Mapping(pa=p, rights=rights, state=OWNED)

    # --- create --------------------------------------------------------------------------
    def lend(self, owner: int, acl: list[tuple[int, int]], sgl: list[tuple[int, int]],
             label: int = 0, sanitize: bool = False) -> int:
        """MEM_LEND: pages leave the owner's stage-2 now; return the new handle."""
        return self._create(TransType.LEND, owner, acl, sgl, label, sanitize)

    def share(self, owner: int, acl: list[tuple[int, int]], sgl: list[tuple[int, int]],
              label: int = 0, sanitize: bool = False) -> int:
        """MEM_SHARE: the owner (listed in the ACL) keeps its mapping; return the handle."""
        return self._create(TransType.SHARE, owner, acl, sgl, label, sanitize)

    def donate(self, owner: int, acl: list[tuple[int, int]], sgl: list[tuple[int, int]],
               label: int = 0, sanitize: bool = False) -> int:
        """MEM_DONATE: one RWX recipient; ownership moves when it accepts."""
        return self._create(TransType.DONATE, owner, acl, sgl, label, sanitize)

    def _create(self, trans: TransType, owner: int, acl: list[tuple[int, int]],
                sgl: list[tuple[int, int]], label: int, sanitize: bool) -> int:
        """Check, then move the owner's pages into a new parcel.

        Raises ARGUMENT_INVALID (list shape, ACL membership), NORESOURCE (64 parcels) or
        MEM_INVALID (a page the owner does not hold free in its stage-2).
        """
        check_lists(trans, owner, acl, sgl)
        if sum(p.owner == owner for p in self._parcels.values()) >= MEMPARCEL_MAX_PER_OWNER:
            raise MemError("NORESOURCE", f"VM {owner} has {MEMPARCEL_MAX_PER_OWNER} parcels")
        table = self._s2.get(owner, {})
        ipas = sgl_pages(sgl)
        for ipa in ipas:
            m = table.get(ipa)
            # Sheet silent on the RM error; the hypervisor says MEMDB_NOT_OWNER for memory
            # the source does not own, which the RM reports as MEM_INVALID. A page already
            # in a parcel (lent/shared) is no longer the owner's to give, so the same.
            if m is None or m.state not in (OWNED, DONATED_IN):
                raise MemError("MEM_INVALID",
                               f"IPA {ipa * PAGE_SIZE:#x} is not free memory of VM {owner}")
        handle = self._alloc_handle()
        parcel = MemParcel(handle=handle, owner=owner, trans_type=trans, acl=dict(acl),
                           sgl=list(sgl), pages=[(ipa, table[ipa].pa) for ipa in ipas],
                           label=label, sanitized=sanitize)
        for ipa, pa in parcel.pages:
            m = table[ipa]
            m.handle, m.saved_rights, m.saved_state = handle, m.rights, m.state
            if trans is TransType.SHARE:
                m.state = SHARED
            else:
                m.rights, m.state = int(PgtableAccess.NONE), LENT
            if sanitize:
                self._contents[pa] = 0
            self._page_parcel[pa] = handle
        self._parcels[handle] = parcel
        others = [v for v, _ in acl if v != owner] or [owner]
        self._emit(f"mem.{trans.name.lower()}", owner=owner, vm=others[0], vms=others,
                   handle=handle, base=sgl[0][0], size=parcel.size,
                   rights=rights_str(parcel.acl[others[0]]), trans_type=trans.name,
                   acl=parcel.to_dict()["acl"], label=label, sanitize=sanitize)
        return handle

    def _alloc_handle(self) -> int:
        """Sequential handles from 0, skipping the invalid value and live ones (§8.2)."""
        h = self._next_handle
        while h == MEMPARCEL_HANDLE_INVALID or h in self._parcels:
            h = (h + 1) & MEMPARCEL_HANDLE_MASK
        self._next_handle = (h + 1) & MEMPARCEL_HANDLE_MASK
        return h

    def _parcel(self, handle: int) -> MemParcel:
        parcel = self._parcels.get(handle)
        if parcel is None:
            raise MemError("HANDLE_INVALID", f"no memparcel {handle}")
        return parcel

    # --- borrower side -----------------------------------------------------------------
    def accept(self, vmid: int, handle: int, rights_check: int | None = None,
               sanitize: bool = False, ipa_base: int | None = None,
               label_check: int | None = None) -> list[tuple[int, int]]:
        """MEM_ACCEPT: map the parcel into ``vmid`` with its ACL rights; return IPA ranges.

        A DONATE accept moves ownership and deletes the parcel. Raises HANDLE_INVALID,
        DENIED (owner, not in ACL, twice, SANITIZE without W), VALIDATE_FAILED,
        ARGUMENT_INVALID (unaligned ``ipa_base``) or MEM_INVALID (IPA already in use).
        """
        parcel = self._parcel(handle)
        if vmid == parcel.owner:
            raise MemError("DENIED", "the owner cannot accept its own parcel")
        if vmid not in parcel.acl:  # sheet silent; not being listed is a refusal
            raise MemError("DENIED", f"VM {vmid} is not in the ACL")
        if vmid in parcel.accepted:
            raise MemError("DENIED", f"VM {vmid} already accepted {handle}")
        rights = parcel.acl[vmid]
        if rights_check is not None and rights_check != rights:
            raise MemError("VALIDATE_FAILED", f"ACL gives {rights_str(rights)}")
        if label_check is not None and label_check != parcel.label:
            raise MemError("VALIDATE_FAILED", f"label is {parcel.label}")
        if sanitize and not rights & PgtableAccess.W:  # sheet: "needs W"; error not given
            raise MemError("DENIED", "SANITIZE needs write access")
        targets = self._accept_targets(vmid, parcel, ipa_base)
        table = self._s2.setdefault(vmid, {})
        if parcel.trans_type is TransType.DONATE:
            for (ipa, pa), t in zip(parcel.pages, targets, strict=True):
                del self._s2[parcel.owner][ipa]
                del self._page_parcel[pa]
                self._owner[pa] = vmid
                table[t] = Mapping(pa=pa, rights=RWX, state=DONATED_IN)
            del self._parcels[handle]
        else:
            for (_, pa), t in zip(parcel.pages, targets, strict=True):
                table[t] = Mapping(pa=pa, rights=rights, state=BORROWED, handle=handle)
            parcel.accepted[vmid] = targets
            parcel.state = ParcelState.SHARED
            parcel.sanitize_on_reclaim |= sanitize
        ranges = coalesce(targets)
        self._emit("mem.accept", owner=parcel.owner, vm=vmid, handle=handle,
                   base=ranges[0][0], size=parcel.size, rights=rights_str(rights),
                   trans_type=parcel.trans_type.name, sanitize=sanitize)
        return ranges

    def _accept_targets(self, vmid: int, parcel: MemParcel, ipa_base: int | None) -> list[int]:
        """IPA pages the borrower will map: identity, or contiguous from ``ipa_base``."""
        if ipa_base is None:
            targets = [pa for _, pa in parcel.pages]
        elif ipa_base < 0 or ipa_base % PAGE_SIZE:
            raise MemError("ARGUMENT_INVALID", f"IPA {ipa_base:#x} not page-aligned")
        else:
            first = ipa_base // PAGE_SIZE
            targets = list(range(first, first + len(parcel.pages)))
        table = self._s2.get(vmid, {})
        clash = [t for t in targets if t in table]
        if clash:  # sheet silent on the error; the borrower's IPA space is taken
            raise MemError("MEM_INVALID", f"IPA {clash[0] * PAGE_SIZE:#x} already mapped")
        return targets

    def release(self, vmid: int, handle: int, sanitize: bool = False) -> None:
        """MEM_RELEASE: unmap from the borrower. Raises HANDLE_INVALID, DENIED, MEM_RELEASED."""
        parcel = self._parcel(handle)
        if vmid == parcel.owner:
            raise MemError("DENIED", "the owner cannot release its own parcel")
        if vmid not in parcel.accepted:
            raise MemError("MEM_RELEASED", f"VM {vmid} has not accepted {handle}")
        if sanitize and not parcel.acl[vmid] & PgtableAccess.W:
            raise MemError("DENIED", "SANITIZE needs write access")
        targets = parcel.accepted.pop(vmid)
        table = self._s2[vmid]
        for t in targets:
            m = table.pop(t)
            if sanitize:
                self._contents[m.pa] = 0
        if not parcel.accepted:
            parcel.state = ParcelState.SHARING
        self._emit("mem.release", owner=parcel.owner, vm=vmid, handle=handle,
                   base=coalesce(targets)[0][0], size=parcel.size,
                   rights=rights_str(parcel.acl[vmid]), sanitize=sanitize)

    # --- owner side ----------------------------------------------------------------------
    def reclaim(self, owner: int, handle: int, sanitize: bool = False) -> None:
        """MEM_RECLAIM: pages return to the owner's stage-2; the parcel is deleted.

        Raises HANDLE_INVALID, DENIED (not the owner) or MEM_INUSE (still accepted).
        """
        parcel = self._parcel(handle)
        if owner != parcel.owner:
            raise MemError("DENIED", f"VM {owner} does not own {handle}")
        if parcel.accepted:
            raise MemError("MEM_INUSE", f"accepted by {sorted(parcel.accepted)}")
        zero = sanitize or parcel.sanitize_on_reclaim
        table = self._s2[owner]
        for ipa, pa in parcel.pages:
            m = table[ipa]
            m.rights, m.state, m.handle = m.saved_rights, m.saved_state, None
            m.saved_rights, m.saved_state = 0, OWNED
            if zero:
                self._contents[pa] = 0
            del self._page_parcel[pa]
        del self._parcels[handle]
        self._emit("mem.reclaim", owner=owner, vm=owner, handle=handle,
                   base=parcel.sgl[0][0], size=parcel.size, sanitize=zero)

    def notify(self, vmid: int, handle: int, flags: int, vmids: Iterable[int] = (),
               mem_info_tag: int = 0) -> list[tuple[int, str, dict]]:
        """MEM_NOTIFY: return the (vmid, notification name, payload) list the RM sends.

        SHARED/RECALL come from the owner and go to listed ACL members; RELEASED/ACCEPTED
        come from an ACL member and go to the owner. Raises HANDLE_INVALID, DENIED or
        ARGUMENT_INVALID (not exactly one flag, bad target list, mem_info_tag mismatch).
        """
        parcel = self._parcel(handle)
        flag, out = notify_messages(parcel, vmid, flags, list(vmids), mem_info_tag)
        self._emit("mem.notify", owner=parcel.owner, vm=vmid, handle=handle,
                   flags=flag.name, notification=out[0][1], targets=[v for v, _, _ in out],
                   mem_info_tag=mem_info_tag)
        return out

    # --- demand paging: memextent_donate and addrspace_map (facts §10.2) -------------
    def given_to(self, pa: int) -> int | None:
        """The VM whose demand-paging extent holds physical page ``pa``, if any."""
        return self._given.get(pa // PAGE_SIZE)

    def extent_donate(self, frm: int, to: int, pa: int, keep: bool) -> None:
        """Move page ``pa`` from ``frm``'s extent into ``to``'s (memextent_donate).

        ``keep`` False (lent memory, TO_PROTECTED): ``to`` owns the page and it leaves
        ``frm``'s stage-2 now. ``keep`` True (shared memory, TO_SIBLING): ``frm`` keeps
        ownership and its mapping. Raises MEM_INVALID unless ``frm`` owns the page,
        holds it mapped and has not put it in a memparcel or another donation.
        """
        page = pa // PAGE_SIZE
        mapping = self._s2.get(frm, {}).get(page)
        if (self._owner.get(page) != frm or page in self._given or mapping is None
                or mapping.state != OWNED):
            raise MemError("MEM_INVALID", f"page {pa:#x} is not {frm}'s to donate")
        self._given[page], self._donor[page] = to, frm
        if not keep:
            self._owner[page] = to
            del self._s2[frm][page]
        self._emit("mem.extent_donate", owner=frm, vm=to, pa=pa, size=PAGE_SIZE,
                   kept=keep)

    def extent_map(self, vmid: int, ipa: int, pa: int, rights: int) -> None:
        """Map donated page ``pa`` at ``ipa`` in ``vmid``'s stage-2 (addrspace_map).

        Raises MEM_INVALID unless the page was donated to ``vmid`` and is unmapped, and
        ARGUMENT_INVALID if ``ipa`` is already mapped."""
        page, at = pa // PAGE_SIZE, ipa // PAGE_SIZE
        table = self._s2.setdefault(vmid, {})
        if self._given.get(page) != vmid or any(m.pa == page for m in table.values()):
            raise MemError("MEM_INVALID", f"page {pa:#x} is not in {vmid}'s extent")
        if at in table:
            raise MemError("ARGUMENT_INVALID", f"IPA {ipa:#x} is already mapped")
        state = DONATED_IN if self._owner.get(page) == vmid else BORROWED
        table[at] = Mapping(pa=page, rights=rights, state=state)
        self._emit("mem.map", vm=vmid, owner=self._owner.get(page), base=ipa, pa=pa,
                   size=PAGE_SIZE, rights=rights_str(rights), state=state,
                   donor=self._donor[page])

    def extent_unmap(self, vmid: int, ipa: int, pa: int) -> None:
        """Remove ``vmid``'s mapping of donated page ``pa`` at ``ipa`` (addrspace_unmap)."""
        at = ipa // PAGE_SIZE
        m = self._s2.get(vmid, {}).get(at)
        if m is None or m.pa != pa // PAGE_SIZE or self._given.get(m.pa) != vmid:
            raise MemError("MEM_INVALID", f"IPA {ipa:#x} does not map page {pa:#x}")
        del self._s2[vmid][at]
        self._emit("mem.unmap", vm=vmid, base=ipa, pa=pa, size=PAGE_SIZE)

    def mapped(self, vmid: int, addr: int) -> bool:
        """True if IPA ``addr`` has a stage-2 entry in ``vmid`` (any rights)."""
        return addr // PAGE_SIZE in self._s2.get(vmid, {})

    # --- the guest's view: stage-2 access -----------------------------------------------
    def access(self, vmid: int, addr: int, kind: str) -> bool:
        """True if ``vmid`` may access IPA ``addr`` for ``kind``; else emit mem.fault.

        A fault is what the hypervisor turns into an abort injected back into the VM.
        """
        need = access_bit(kind)
        m = self._s2.get(vmid, {}).get(addr // PAGE_SIZE)
        if m is not None and m.rights & need:
            return True
        pa = m.pa if m is not None else addr // PAGE_SIZE
        self._emit("mem.fault", vm=vmid, addr=addr, access=kind,
                   rights=rights_str(m.rights if m else 0),
                   reason="permission" if m is not None else "translation",
                   owner=self._owner.get(pa), handle=m.handle if m else None)
        return False

    def read(self, vmid: int, addr: int) -> int | None:
        """The page label ``vmid`` reads at ``addr``, or None after a fault."""
        if not self.access(vmid, addr, "R"):
            return None
        return self._contents[self._s2[vmid][addr // PAGE_SIZE].pa]

    def write(self, vmid: int, addr: int, value: int) -> bool:
        """Set the page label at ``addr``; False (and a fault) if not writable."""
        if not self.access(vmid, addr, "W"):
            return False
        self._contents[self._s2[vmid][addr // PAGE_SIZE].pa] = value
        return True

    # --- inspection ----------------------------------------------------------------------
    def owner_of(self, pa: int) -> int | None:
        """The VM owning physical address ``pa`` (None if no VM was given that page)."""
        return self._owner.get(pa // PAGE_SIZE)

    def contents(self, pa: int) -> int:
        """The label stored in the physical page at ``pa`` (0 after sanitize)."""
        return self._contents[pa // PAGE_SIZE]

    def view(self, vmid: int) -> list[dict]:
        """``vmid``'s stage-2 as coalesced ranges for the memory map, by IPA."""
        out: list[dict] = []
        for ipa, m in sorted(self._s2.get(vmid, {}).items()):
            last = out[-1] if out else None
            if (last and last["base"] + last["size"] == ipa * PAGE_SIZE
                    and last["pa"] + last["size"] == m.pa * PAGE_SIZE
                    and (last["_rights"], last["state"], last["handle"])
                    == (m.rights, m.state, m.handle)):
                last["size"] += PAGE_SIZE
                continue
            out.append({"base": ipa * PAGE_SIZE, "size": PAGE_SIZE, "pa": m.pa * PAGE_SIZE,
                        "rights": rights_str(m.rights), "_rights": m.rights,
                        "state": m.state, "handle": m.handle})
        for r in out:
            del r["_rights"]
        return out

    def parcels(self) -> list[dict]:
        """Live memparcels, by handle (for the UI and the RM's queries)."""
        return [self._parcels[h].to_dict() for h in sorted(self._parcels)]

    def snapshot(self) -> dict:
        """Plain JSON-able state; ``from_snapshot`` rebuilds an equal model."""
        return {
            "page_size": PAGE_SIZE,
            "pages": [[p, self._owner[p], self._contents[p]] for p in sorted(self._owner)],
            "stage2": {str(v): [[ipa, m.to_dict()] for ipa, m in sorted(t.items())]
                       for v, t in sorted(self._s2.items())},
            "parcels": self.parcels(),
            "next_handle": self._next_handle,
            **({"given": [[p, v, self._donor[p]] for p, v in sorted(self._given.items())]}
               if self._given else {}),
        }

    @classmethod
    def from_snapshot(cls, snap: dict, emit: Emit | None = None) -> MemoryModel:
        model = cls(emit)
        for p, owner, label in snap["pages"]:
            model._owner[p], model._contents[p] = owner, label
        for v, rows in snap["stage2"].items():
            model._s2[int(v)] = {ipa: Mapping.from_dict(m) for ipa, m in rows}
        for d in snap["parcels"]:
            parcel = MemParcel.from_dict(d)
            model._parcels[parcel.handle] = parcel
            for _, pa in parcel.pages:
                model._page_parcel[pa] = parcel.handle
        model._next_handle = snap["next_handle"]
        model._given = {p: v for p, v, _ in snap.get("given", [])}
        model._donor = {p: d for p, _, d in snap.get("given", [])}
        return model

    def check_invariants(self) -> None:
        """Raise AssertionError unless every page has exactly one owner and every
        mapping is explained: by ownership, or by an accepted parcel with ACL rights."""
        bad: list[str] = []
        held: dict[int, int] = {}  # physical page -> owner mappings seen
        for vmid, table in self._s2.items():
            pas = [m.pa for m in table.values()]
            if len(set(pas)) != len(pas):
                bad.append(f"VM {vmid} maps a physical page twice")
            for ipa, m in table.items():
                where = f"VM {vmid} IPA page {ipa}"
                if m.handle is None and self._given.get(m.pa) == vmid:
                    if self._owner.get(m.pa) == vmid:  # a lent demand page, mapped
                        held[m.pa] = held.get(m.pa, 0) + 1
                    continue
                if self._owner.get(m.pa) == vmid:
                    held[m.pa] = held.get(m.pa, 0) + 1
                    in_parcel = m.state in (LENT, SHARED)
                    if m.state not in OWNER_STATES or in_parcel != (m.handle is not None):
                        bad.append(f"{where}: owner state {m.state} handle {m.handle}")
                    elif in_parcel and self._page_parcel.get(m.pa) != m.handle:
                        bad.append(f"{where}: not in parcel {m.handle}")
                    elif m.state == LENT and m.rights:
                        bad.append(f"{where}: lent page still accessible")
                    continue
                parcel = self._parcels.get(m.handle) if m.state == BORROWED else None
                if (parcel is None or vmid not in parcel.accepted
                        or ipa not in parcel.accepted[vmid]
                        or m.rights != parcel.acl[vmid]
                        or self._page_parcel.get(m.pa) != m.handle):
                    bad.append(f"{where}: mapping of page {m.pa} not backed by a parcel")
        bad += [f"page {p} has {held.get(p, 0)} owner mappings" for p in self._owner
                if held.get(p, 0) != 1 and not (held.get(p, 0) == 0 and p in self._given)]
        per_owner: dict[int, int] = {}
        for h, parcel in self._parcels.items():
            per_owner[parcel.owner] = per_owner.get(parcel.owner, 0) + 1
            if (parcel.state is ParcelState.SHARED) != bool(parcel.accepted):
                bad.append(f"parcel {h}: state {parcel.state.name} vs {parcel.accepted}")
            if parcel.trans_type is TransType.DONATE and parcel.accepted:
                bad.append(f"parcel {h}: accepted DONATE still exists")
            want = SHARED if parcel.trans_type is TransType.SHARE else LENT
            for ipa, pa in parcel.pages:
                m = self._s2.get(parcel.owner, {}).get(ipa)
                if (m is None or (m.pa, m.state) != (pa, want) or self._page_parcel.get(pa) != h
                        or self._owner.get(pa) != parcel.owner):
                    bad.append(f"parcel {h}: page {pa} bookkeeping")
        if len(self._page_parcel) != sum(len(p.pages) for p in self._parcels.values()):
            bad.append("page-to-parcel index has stale entries")
        bad += [f"VM {v} owns {n} parcels" for v, n in per_owner.items()
                if n > MEMPARCEL_MAX_PER_OWNER]
        if bad:
            raise AssertionError("; ".join(bad))
