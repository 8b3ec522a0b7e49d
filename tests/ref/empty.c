/* Keeps voxcl_ref a valid library while tests/ref/ is being filled. */
