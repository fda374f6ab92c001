"""One registry from float cell types to the calibrating wrappers that quantize them."""

_WRAPPERS = {}


def register(*float_cell_types):
    """Class decorator: `@register(ColumnParallelLinear, RowParallelLinear)` on a wrapper class."""
    def decorator(wrapper_cls):
        for cell_type in float_cell_types:
            if cell_type in _WRAPPERS and _WRAPPERS[cell_type] is not wrapper_cls:
                raise ValueError(f"{cell_type.__name__} is already registered to {_WRAPPERS[cell_type].__name__}")
            _WRAPPERS[cell_type] = wrapper_cls
        return wrapper_cls
    return decorator


def wrapper_for(cell):
    """The wrapper class registered for `cell`'s type (or a base type), else None."""
    for cell_type in type(cell).__mro__:
        if cell_type in _WRAPPERS:
            return _WRAPPERS[cell_type]
    return None


def registered_types():
    return tuple(_WRAPPERS)
